/* README: "for lio_listio, -1 EAGAIN and each refused entry's aio_error says EAGAIN".
   When the 64 list slots (engine::LISTS) are taken, lio_listio(LIO_NOWAIT, sig) fails EAGAIN
   before looking at the entries: a reused block still says 0 (success) with its old data. */
#include "common.h"
static struct aiocb cbs[70]; static struct aiocb*L[70]; static char b[70][4];
int main(){
  int p[2]; pipe(p); int f=open("/etc/passwd",O_RDONLY);
  sigset_t s; sigemptyset(&s); sigaddset(&s,SIGRTMIN); sigprocmask(SIG_BLOCK,&s,0);
  struct sigevent se={0}; se.sigev_notify=SIGEV_SIGNAL; se.sigev_signo=SIGRTMIN;
  for(int i=0;i<64;i++){cbs[i].aio_fildes=p[0];cbs[i].aio_buf=b[i];cbs[i].aio_nbytes=1;cbs[i].aio_lio_opcode=LIO_READ;L[i]=&cbs[i];
    if(lio_listio(LIO_NOWAIT,&L[i],1,&se)){P("list %d refused errno %d\n",i,errno);}}
  /* a block used before: completed successfully */
  struct aiocb c; memset(&c,0,sizeof c); c.aio_fildes=f; c.aio_buf=b[65]; c.aio_nbytes=4; aio_read(&c);
  const struct aiocb*l[1]={&c}; aio_suspend(l,1,0); P("reused block before: err %d\n",aio_error(&c)); aio_return(&c);
  c.aio_lio_opcode=LIO_READ; struct aiocb*LL[1]={&c};
  errno=0; int r=lio_listio(LIO_NOWAIT,LL,1,&se); int er=errno; int ae=aio_error(&c);
  P("65th list: ret %d errno %d; entry aio_error %d (README: EAGAIN), aio_return %zd\n",r,er,ae,aio_return(&c));
  aio_cancel(p[0],NULL); return 0;}
