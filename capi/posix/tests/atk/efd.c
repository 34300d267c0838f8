/* A: the library's private eventfd is identified by (dev,ino), which every eventfd shares
   (anon inode). Program closes it (closefrom-style), makes its own eventfd at the same number:
   the library reads/writes the program's eventfd. B: after close, aio_cancel hangs? */
#include "common.h"
int main(int argc,char**argv){
  alarm(20);
  int p[2]; pipe(p);
  static char buf[16]; struct aiocb cb; memset(&cb,0,sizeof cb);
  cb.aio_fildes=p[0]; cb.aio_buf=buf; cb.aio_nbytes=sizeof buf;
  cb.aio_sigevent.sigev_notify=SIGEV_SIGNAL; cb.aio_sigevent.sigev_signo=SIGRTMIN; /* starts the service thread */
  sigset_t s; sigemptyset(&s); sigaddset(&s,SIGRTMIN); sigprocmask(SIG_BLOCK,&s,0);
  if(aio_read(&cb)){perror("aio_read");return 1;}
  usleep(100000); /* service thread blocks in io_getevents with the wake-up POLL */
  int lib=find_lib_eventfd(-1);
  P("library eventfd: %d\n",lib);
  if(lib<0){P("no library eventfd (glibc?)\n");}
  else {
    close(lib);
    int mine = (argc>1 && argv[1][0]=='c') ? -1 : eventfd(5,EFD_NONBLOCK);
    P("program eventfd: %d (counter 5)\n",mine);
    if(argc>1){ /* variant: just cancel now */ }
    /* cause the library to write/read its eventfd: cancel (pokes the reaper) */
    double t0=now();
    int r=aio_cancel(p[0],&cb);
    P("aio_cancel -> %d after %.3fs (AIO_CANCELED=%d)\n",r,now()-t0,AIO_CANCELED);
    struct aiocb cb2; memset(&cb2,0,sizeof cb2); cb2.aio_fildes=p[0]; cb2.aio_buf=buf; cb2.aio_nbytes=4;
    aio_read(&cb2); const struct aiocb*l[1]={&cb2};
    write(p[1],"abcd",4);
    struct timespec to={2,0}; t0=now(); r=aio_suspend(l,1,&to);
    P("aio_suspend -> %d errno %d after %.3fs\n",r,r?errno:0,now()-t0);
    usleep(200000);
    if(mine<0) return 0;
    uint64_t v=0; ssize_t n=read(mine,&v,8);
    P("program eventfd read -> %zd value %llu (expected 5)\n",n,(unsigned long long)v);
    if(n!=8||v!=5)P("DEFECT: program's eventfd counter was altered by the library\n");
  }
  return 0;
}
