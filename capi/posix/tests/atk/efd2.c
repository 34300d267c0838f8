/* Hijack without a hang: no service thread (SIGEV_NONE), main thread's aio_suspend arms the
   wake-up POLL (reads the eventfd to empty it).  Program's eventfd at the library's number. */
#include "common.h"
int main(){
  alarm(20);
  int f=open("/etc/passwd",O_RDONLY); static char buf[64];
  struct aiocb cb; memset(&cb,0,sizeof cb); cb.aio_fildes=f; cb.aio_buf=buf; cb.aio_nbytes=64;
  aio_read(&cb); const struct aiocb*l[1]={&cb}; aio_suspend(l,1,0); aio_return(&cb);
  int lib=find_lib_eventfd(-1); P("library eventfd: %d\n",lib); if(lib<0) return 0;
  close(lib); int mine=eventfd(7,EFD_NONBLOCK); P("program eventfd %d counter 7\n",mine);
  /* a pipe read pending; wait on it with a timeout so the reaper arms (reads "its" eventfd) */
  int p[2]; pipe(p); struct aiocb c2; memset(&c2,0,sizeof c2); c2.aio_fildes=p[0]; c2.aio_buf=buf; c2.aio_nbytes=4;
  aio_read(&c2); l[0]=&c2; struct timespec to={0,200000000};
  int r=aio_suspend(l,1,&to); P("aio_suspend (timeout) -> %d errno %d\n",r,errno);
  uint64_t v=0; ssize_t n=read(mine,&v,8);
  P("program eventfd read -> %zd value %llu errno %d (expected 8 / 7)\n",n,(unsigned long long)v,n<0?errno:0);
  if(n!=8||v!=7)P("DEFECT: library consumed the program's eventfd counter\n");
  aio_cancel(p[0],NULL); return 0;}
