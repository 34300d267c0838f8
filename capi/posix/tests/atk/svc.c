/* "At most one service thread per process": count threads after SIGEV_* requests. */
#include "common.h"
static void fn(union sigval v){(void)v;}
static int nthreads(void){DIR*d=opendir("/proc/self/task");int n=0;struct dirent*e;while((e=readdir(d)))if(e->d_name[0]!='.')n++;closedir(d);return n;}
int main(int argc,char**argv){
  int f=open("/etc/passwd",O_RDONLY); static char b[16]; struct aiocb c;
  int sig = argc>1;
  sigset_t s; sigemptyset(&s); sigaddset(&s,SIGRTMIN); sigprocmask(SIG_BLOCK,&s,0);
  for(int i=0;i<5;i++){ memset(&c,0,sizeof c); c.aio_fildes=f; c.aio_buf=b; c.aio_nbytes=16;
    if(sig){c.aio_sigevent.sigev_notify=SIGEV_SIGNAL;c.aio_sigevent.sigev_signo=SIGRTMIN;}
    else {c.aio_sigevent.sigev_notify=SIGEV_THREAD; c.aio_sigevent.sigev_notify_function=fn;}
    aio_read(&c); const struct aiocb*l[1]={&c}; aio_suspend(l,1,0); usleep(20000);
    P("after request %d: %d threads\n",i,nthreads()); }
  return 0;}
