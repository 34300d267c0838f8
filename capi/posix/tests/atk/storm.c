#include "common.h"
static volatile int stop; static pthread_t mainth; static volatile long hits;
static void onsig(int s){(void)s;hits++;}
static int wp; static void* writer(void*a){(void)a; while(!stop){usleep(500); write(wp,"q",1);} return 0;}
static void* storm(void*a){(void)a; while(!stop){pthread_kill(mainth,SIGUSR1);} return 0;}
static int f; static char cbuf[64]; static sem_t done; static volatile int cbres=-99, cbdepth;
static void cb2(union sigval v){(void)v; sem_post(&done);}
static void cb(union sigval v){
  /* re-entrant: submit a new request with SIGEV_THREAD from the callback, wait for it here with aio_suspend */
  struct aiocb *c=malloc(sizeof *c); memset(c,0,sizeof *c); c->aio_fildes=f; c->aio_buf=cbuf; c->aio_nbytes=8;
  int depth=v.sival_int;
  if(depth<3){c->aio_sigevent.sigev_notify=SIGEV_THREAD; c->aio_sigevent.sigev_notify_function=cb; c->aio_sigevent.sigev_value.sival_int=depth+1;}
  else {c->aio_sigevent.sigev_notify=SIGEV_THREAD; c->aio_sigevent.sigev_notify_function=cb2;}
  if(aio_read(c)){cbres=errno;sem_post(&done);return;}
  const struct aiocb*l[1]={c}; struct timespec t={2,0}; int r=aio_suspend(l,1,&t); if(r) cbres=errno; else cbres=aio_return(c);
  cbdepth=depth;
}
int main(){
  alarm(60); mainth=pthread_self(); struct sigaction sa={0}; sa.sa_handler=onsig; sigaction(SIGUSR1,&sa,0);
  f=open("/etc/passwd",O_RDONLY);
  int p[2]; pipe(p); static char b[8]; pthread_t t[2];
  wp=p[1]; pthread_t w; pthread_create(&w,0,writer,0); for(int i=0;i<2;i++)pthread_create(&t[i],0,storm,0);
  int eintr=0,zero=0,other=0,lost=0;
  for(int i=0;i<2000;i++){ struct aiocb c; memset(&c,0,sizeof c); c.aio_fildes=p[0]; c.aio_buf=b; c.aio_nbytes=1;
    if(aio_read(&c)){ if(errno==EAGAIN){i--;continue;} other++; continue;}
    const struct aiocb*l[1]={&c}; int tries=0;
    while(aio_error(&c)==EINPROGRESS){ struct timespec to={1,0}; int r=aio_suspend(l,1,&to); if(r==0)zero++; else if(errno==EINTR)eintr++; else if(errno==EAGAIN){ if(++tries>3){lost++;break;} } else other++; }
    if(aio_error(&c)==0 && aio_return(&c)!=1) other++; }
  stop=1; for(int i=0;i<2;i++)pthread_join(t[i],0); pthread_join(w,0);
  P("storm: 2000 reqs, suspend returned 0 %d, EINTR %d, timeouts-lost %d, other %d, signals %ld\n",zero,eintr,lost,other,hits);
  sem_init(&done,0,0); struct aiocb c; memset(&c,0,sizeof c); c.aio_fildes=f; c.aio_buf=b; c.aio_nbytes=8;
  c.aio_sigevent.sigev_notify=SIGEV_THREAD; c.aio_sigevent.sigev_notify_function=cb; c.aio_sigevent.sigev_value.sival_int=0; aio_read(&c);
  struct timespec ts; clock_gettime(CLOCK_REALTIME,&ts); ts.tv_sec+=5; int r=sem_timedwait(&done,&ts); usleep(100000);
  P("reentrant SIGEV_THREAD chain depth 3: final notification %s, last cb aio_suspend result %d at depth %d\n",r?"NOT delivered":"delivered",cbres,cbdepth);
  return 0;}
