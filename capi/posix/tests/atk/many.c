/* Resource limits: 2000 outstanding pipe reads -> EAGAIN clean; then cancel all and reuse;
   1e5 file requests with RSS in-process; lio_listio with 2000 entries; 65+ lists with notify. */
#include "common.h"
static long rss_kb(void){FILE*f=fopen("/proc/self/statm","r");long a,b;fscanf(f,"%ld %ld",&a,&b);fclose(f);return b*4;}
#define N 2000
static struct aiocb cbs[N]; static char bufs[N][8]; static struct aiocb*L[N];
int main(){
  alarm(120);
  int p[2]; pipe(p); int ok=0,again=0,other=0;
  for(int i=0;i<N;i++){memset(&cbs[i],0,sizeof cbs[i]);cbs[i].aio_fildes=p[0];cbs[i].aio_buf=bufs[i];cbs[i].aio_nbytes=1;
    errno=0; int r=aio_read(&cbs[i]); if(!r)ok++; else if(errno==EAGAIN)again++; else other++;}
  P("A %d pipe reads: %d queued, %d EAGAIN, %d other\n",N,ok,again,other);
  int r=aio_cancel(p[0],NULL); int canc=0; for(int i=0;i<N;i++) if(aio_error(&cbs[i])==ECANCELED)canc++;
  P("A cancel all: %d, ECANCELED %d\n",r,canc);
  int f=open("/etc/passwd",O_RDONLY);
  /* lio_listio with N entries LIO_WAIT */
  for(int i=0;i<N;i++){memset(&cbs[i],0,sizeof cbs[i]);cbs[i].aio_fildes=f;cbs[i].aio_buf=bufs[i];cbs[i].aio_nbytes=8;cbs[i].aio_offset=i%100;cbs[i].aio_lio_opcode=LIO_READ;L[i]=&cbs[i];}
  errno=0; r=lio_listio(LIO_WAIT,L,N,0); int e=errno; int good=0,ea=0,inprog=0; for(int i=0;i<N;i++){int x=aio_error(&cbs[i]); if(x==0)good++; else if(x==EAGAIN)ea++; else if(x==EINPROGRESS)inprog++;}
  P("B lio_listio WAIT %d entries: ret %d errno %d; ok %d EAGAIN %d EINPROGRESS %d\n",N,r,r?e:0,good,ea,inprog);
  /* lists with notification: 100 concurrent NOWAIT lists, each with a pipe read */
  struct sigevent se={0}; se.sigev_notify=SIGEV_SIGNAL; se.sigev_signo=SIGRTMIN; sigset_t s; sigemptyset(&s); sigaddset(&s,SIGRTMIN); sigprocmask(SIG_BLOCK,&s,0);
  int lok=0,lea=0;
  for(int i=0;i<100;i++){memset(&cbs[i],0,sizeof cbs[i]);cbs[i].aio_fildes=p[0];cbs[i].aio_buf=bufs[i];cbs[i].aio_nbytes=1;cbs[i].aio_lio_opcode=LIO_READ;L[i]=&cbs[i];
    errno=0; r=lio_listio(LIO_NOWAIT,&L[i],1,&se); if(!r)lok++; else if(errno==EAGAIN){lea++; if(lea==1)P("C first EAGAIN at list %d; entry aio_error %d\n",i,aio_error(&cbs[i]));}}
  P("C 100 NOWAIT lists with signal: %d ok %d EAGAIN\n",lok,lea);
  aio_cancel(p[0],NULL);
  /* D: 1e5 requests, RSS */
  long r0=0; struct aiocb c; static char b[64];
  for(int i=0;i<100000;i++){ memset(&c,0,sizeof c); c.aio_fildes=f; c.aio_buf=b; c.aio_nbytes=64; c.aio_offset=i%512;
    if(i%3==1){c.aio_sigevent.sigev_notify=SIGEV_SIGNAL;c.aio_sigevent.sigev_signo=SIGRTMIN;}
    if(aio_read(&c)){perror("aio_read");return 1;} const struct aiocb*l[1]={&c}; while(aio_error(&c)==EINPROGRESS) aio_suspend(l,1,0);
    aio_return(&c); if(i%3==1){siginfo_t si; struct timespec z={0,0}; while(sigtimedwait(&s,&si,&z)>0);} if(i==10000)r0=rss_kb(); }
  P("D RSS after 1e4 %ld kB, after 1e5 %ld kB\n",r0,rss_kb());
  return 0;}
