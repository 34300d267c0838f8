/* SIGEV_THREAD: POSIX runs the function "as if it were the start function of a new thread",
   so it may pthread_exit, and may block waiting for a later notification. */
#include "common.h"
static sem_t got; static volatile int calls;
static void exiting(union sigval v){ __sync_fetch_and_add(&calls,1); sem_post(&got); if(v.sival_int==1) pthread_exit(0); }
static sem_t second;
static void blocker(union sigval v){ P("callback %d starts at %.3f tid %d\n",v.sival_int,now(),gettid()); if(v.sival_int==10){ struct timespec t; clock_gettime(CLOCK_REALTIME,&t); t.tv_sec+=3;
    int r=sem_timedwait(&second,&t); P("first callback: second callback %s\n", r==0?"ran while first blocked (ok)":"NEVER ran while first blocked (DEFECT)"); sem_post(&got);} else sem_post(&second); }
static int submit(int fd, void(*fn)(union sigval), int val, struct aiocb*cb, char*buf){
  memset(cb,0,sizeof *cb); cb->aio_fildes=fd; cb->aio_buf=buf; cb->aio_nbytes=16;
  cb->aio_sigevent.sigev_notify=SIGEV_THREAD; cb->aio_sigevent.sigev_notify_function=fn; cb->aio_sigevent.sigev_value.sival_int=val;
  return aio_read(cb);}
int main(int argc,char**argv){
  alarm(30); sem_init(&got,0,0); sem_init(&second,0,0);
  int f=open("/etc/passwd",O_RDONLY); static char b1[16],b2[16],b3[16]; struct aiocb c1,c2,c3;
  struct timespec t;
  if(argc>1 && argv[1][0]=='b'){
    submit(f,blocker,10,&c1,b1); usleep(100000); submit(f,blocker,11,&c2,b2);
    clock_gettime(CLOCK_REALTIME,&t); t.tv_sec+=6; sem_timedwait(&got,&t); return 0; }
  submit(f,exiting,1,&c1,b1);
  clock_gettime(CLOCK_REALTIME,&t); t.tv_sec+=3; int r=sem_timedwait(&got,&t); P("first callback (pthread_exit): %s\n",r?"not called":"called");
  usleep(100000);
  submit(f,exiting,2,&c2,b2);
  clock_gettime(CLOCK_REALTIME,&t); t.tv_sec+=3; r=sem_timedwait(&got,&t);
  P("second callback after the first pthread_exit'ed: %s\n",r?"LOST (DEFECT)":"called");
  /* pipe read with SIGEV_THREAD: needs the service thread to progress */
  int p[2]; pipe(p); submit(p[0],exiting,3,&c3,b3); write(p[1],"x",1);
  clock_gettime(CLOCK_REALTIME,&t); t.tv_sec+=3; r=sem_timedwait(&got,&t);
  P("pipe read notification: %s; aio_error=%d\n",r?"LOST":"called",aio_error(&c3));
  return 0;}
