#include "common.h"
static char buf[8][4096];
static void init(struct aiocb*c,int fd,int k,size_t n,off_t off){memset(c,0,sizeof *c);c->aio_fildes=fd;c->aio_buf=buf[k];c->aio_nbytes=n;c->aio_offset=off;}
static volatile int sigs; static siginfo_t last;
static void h(int s,siginfo_t*i,void*u){(void)s;(void)u;sigs++;last=*i;}
static void onint(int s){(void)s;}
static void waitfor(struct aiocb*c){const struct aiocb*l[1]={c};while(aio_error(c)==EINPROGRESS)aio_suspend(l,1,0);}
int main(void){
  alarm(60);
  struct sigaction sa={0}; sa.sa_sigaction=h; sa.sa_flags=SA_SIGINFO; sigaction(SIGRTMIN,&sa,0);
  char path[]="/tmp/atkrulesXXXXXX"; int f=mkstemp(path); unlink(path); write(f,"0123456789",10);
  struct aiocb c[8]; int r;
  /* 1. aio_cancel(fd,NULL) with mixed: two pipe reads waiting + notification for each */
  int p[2]; pipe(p);
  for(int k=0;k<2;k++){init(&c[k],p[0],k,16,0);c[k].aio_sigevent.sigev_notify=SIGEV_SIGNAL;c[k].aio_sigevent.sigev_signo=SIGRTMIN;c[k].aio_sigevent.sigev_value.sival_int=100+k;aio_read(&c[k]);}
  sigs=0; r=aio_cancel(p[0],NULL);
  int e0=aio_error(&c[0]),e1=aio_error(&c[1]); ssize_t r0=aio_return(&c[0]);
  usleep(300000);
  P("1 cancel(NULL) 2 waiting pipe reads: ret %d (CANCELED=%d NOTCANCELED=%d) err %d %d ret0 %zd signals %d\n",r,AIO_CANCELED,AIO_NOTCANCELED,e0,e1,r0,sigs);
  r=aio_cancel(p[0],NULL); P("1b again: %d (ALLDONE=%d)\n",r,AIO_ALLDONE);
  /* 2. aio_suspend edge cases */
  const struct aiocb*nl[3]={0,0,0}; struct timespec z={0,0};
  errno=0; r=aio_suspend(nl,0,&z); P("2a suspend nent 0: %d errno %d\n",r,errno);
  errno=0; r=aio_suspend(nl,3,&z); P("2b suspend all NULL: %d errno %d\n",r,errno);
  init(&c[2],p[0],2,16,0); aio_read(&c[2]); nl[1]=&c[2];
  errno=0; double t0=now(); r=aio_suspend(nl,3,&z); P("2c suspend timeout 0 pending: %d errno %d (%.3fs)\n",r,errno,now()-t0);
  struct timespec big={0x7fffffffffffffffLL,999999999}; struct sigaction si={0}; si.sa_handler=onint; sigaction(SIGALRM,&si,0);
  struct itimerval it={{0,0},{0,200000}}; setitimer(ITIMER_REAL,&it,0);
  errno=0; t0=now(); r=aio_suspend(nl,3,&big); P("2d suspend huge timeout + SIGALRM (no SA_RESTART): %d errno %d (%.3fs)\n",r,errno,now()-t0);
  if(is_ours()){ si.sa_flags=SA_RESTART; sigaction(SIGALRM,&si,0); setitimer(ITIMER_REAL,&it,0);
  errno=0; t0=now(); r=aio_suspend(nl,3,NULL); P("2e suspend NULL timeout + SIGALRM (SA_RESTART): %d errno %d (%.3fs)\n",r,errno,now()-t0);}
  struct timespec bad={0,1000000000}; errno=0; r=aio_suspend(nl,3,&bad); P("2f suspend tv_nsec 1e9: %d errno %d\n",r,errno);
  struct timespec neg={-1,0}; errno=0; r=aio_suspend(nl,3,&neg); P("2g suspend tv_sec -1: %d errno %d\n",r,errno);
  aio_cancel(p[0],NULL); alarm(60);
  /* 3. lio_listio LIO_NOWAIT: signal once after all; NOPs; O_DIRECT? just file + pipe */
  sigs=0; struct aiocb*L[6]; struct sigevent se={0}; se.sigev_notify=SIGEV_SIGNAL; se.sigev_signo=SIGRTMIN; se.sigev_value.sival_int=777;
  init(&c[0],f,0,4,0); c[0].aio_lio_opcode=LIO_READ; init(&c[1],p[0],1,4,0); c[1].aio_lio_opcode=LIO_READ;
  init(&c[2],f,2,4,0); c[2].aio_lio_opcode=LIO_NOP; L[0]=&c[0];L[1]=0;L[2]=&c[1];L[3]=&c[2];
  r=lio_listio(LIO_NOWAIT,L,4,&se); usleep(200000); int before=sigs; write(p[1],"wxyz",4); waitfor(&c[1]); usleep(200000);
  P("3 lio NOWAIT file+pipe+NOP: ret %d; signals before pipe data %d, after %d (want 0,1) value %d code %d; NOP err %d\n",r,before,sigs,last.si_value.sival_int,last.si_code,aio_error(&c[2]));
  /* 3b all NOP list with signal */
  sigs=0; L[0]=&c[2]; r=lio_listio(LIO_NOWAIT,L,1,&se); usleep(200000); P("3b lio NOWAIT only NOP: ret %d signals %d\n",r,sigs);
  sigs=0; r=lio_listio(LIO_NOWAIT,L,0,&se); usleep(200000); P("3c lio NOWAIT nent 0: ret %d signals %d\n",r,sigs);
  /* 3d partial failure NOWAIT: bad fd + good */
  sigs=0; init(&c[3],-1,3,4,0); c[3].aio_lio_opcode=LIO_READ; init(&c[4],f,4,4,0); c[4].aio_lio_opcode=LIO_READ; L[0]=&c[3];L[1]=&c[4];
  errno=0; r=lio_listio(LIO_NOWAIT,L,2,&se); int er=errno; waitfor(&c[4]); usleep(200000);
  P("3d lio NOWAIT bad fd + good: ret %d errno %d; err %d %d; signals %d\n",r,er,aio_error(&c[3]),aio_error(&c[4]),sigs);
  /* 3e bad opcode */
  init(&c[5],f,5,4,0); c[5].aio_lio_opcode=99; L[0]=&c[5]; errno=0; r=lio_listio(LIO_WAIT,L,1,0); P("3e lio bad opcode WAIT: ret %d errno %d err %d\n",r,errno,aio_error(&c[5]));
  /* 3f nent huge vs AIO_LISTIO_MAX */
  long lm=sysconf(_SC_AIO_LISTIO_MAX); P("3f sysconf AIO_LISTIO_MAX %ld AIO_MAX %ld\n",lm,sysconf(_SC_AIO_MAX));
  /* 4. cancel of a lio entry: list notification still once */
  sigs=0; init(&c[0],p[0],0,4,0);c[0].aio_lio_opcode=LIO_READ; init(&c[1],p[0],1,4,0);c[1].aio_lio_opcode=LIO_READ; L[0]=&c[0];L[1]=&c[1];
  r=lio_listio(LIO_NOWAIT,L,2,&se); usleep(100000); int rc=aio_cancel(p[0],&c[1]); usleep(100000); int s1=sigs; rc=aio_cancel(p[0],NULL)*10+rc; usleep(200000);
  P("4 lio 2 pipe reads, cancel one then the other: lio %d cancels %d; signals after first %d, after both %d (want 0,1); errs %d %d\n",r,rc,s1,sigs,aio_error(&c[0]),aio_error(&c[1]));
  /* 5. aio_fsync variants */
  init(&c[0],f,0,0,0); errno=0; r=aio_fsync(O_SYNC,&c[0]); waitfor(&c[0]); P("5a fsync O_SYNC: %d err %d ret %zd\n",r,aio_error(&c[0]),aio_return(&c[0]));
  init(&c[0],f,0,0,0); r=aio_fsync(O_DSYNC,&c[0]); waitfor(&c[0]); P("5b fsync O_DSYNC: %d err %d\n",r,aio_error(&c[0]));
  init(&c[0],f,0,0,0); errno=0; r=aio_fsync(O_SYNC|O_DSYNC,&c[0]); P("5c fsync O_SYNC|O_DSYNC: %d errno %d\n",r,errno);
  init(&c[0],f,0,0,0); errno=0; r=aio_fsync(O_RDWR,&c[0]); P("5d fsync O_RDWR(2): %d errno %d\n",r,errno);
  int ro=open("/etc/passwd",O_RDONLY); init(&c[0],ro,0,0,0); errno=0; r=aio_fsync(O_SYNC,&c[0]); if(!r)waitfor(&c[0]); P("5e fsync on O_RDONLY fd: %d errno %d err %d\n",r,errno,aio_error(&c[0]));
  /* 6. offsets, sizes */
  init(&c[0],f,0,4,100); aio_read(&c[0]); waitfor(&c[0]); P("6a read beyond EOF: err %d ret %zd\n",aio_error(&c[0]),aio_return(&c[0]));
  init(&c[0],f,0,0,0); r=aio_read(&c[0]); waitfor(&c[0]); P("6b read nbytes 0: %d err %d ret %zd\n",r,aio_error(&c[0]),aio_return(&c[0]));
  init(&c[0],f,0,0,0); c[0].aio_nbytes=(size_t)-1; errno=0; r=aio_read(&c[0]); if(!r)waitfor(&c[0]); P("6c read nbytes SIZE_MAX: %d errno %d err %d\n",r,errno,aio_error(&c[0]));
  init(&c[0],f,0,0,0); c[0].aio_nbytes=((size_t)1<<40); errno=0; r=aio_read(&c[0]); if(!r)waitfor(&c[0]); P("6d read nbytes 1TiB into 4K buffer (file 10 bytes): %d err %d ret %zd\n",r,aio_error(&c[0]),aio_return(&c[0]));
  init(&c[0],f,0,4,-5); errno=0; r=aio_write(&c[0]); if(!r)waitfor(&c[0]); P("6e write offset -5: %d errno %d err %d\n",r,errno,aio_error(&c[0]));
  init(&c[0],f,0,4,0x7ffffffffffffff0LL); errno=0; r=aio_write(&c[0]); if(!r)waitfor(&c[0]); P("6f write offset near OFF_MAX: %d errno %d err %d ret %zd\n",r,errno,aio_error(&c[0]),aio_return(&c[0]));
  init(&c[0],p[0],0,4,-5); write(p[1],"abcd",4); errno=0; r=aio_read(&c[0]); if(!r)waitfor(&c[0]); P("6g pipe read offset -5 (ignored on pipes): %d err %d ret %zd\n",r,aio_error(&c[0]),aio_return(&c[0]));
  /* 7. O_APPEND */
  char ap[]="/tmp/atkappXXXXXX"; int a=mkstemp(ap); write(a,"AAAA",4); close(a); a=open(ap,O_WRONLY|O_APPEND); unlink(ap);
  memcpy(buf[0],"BBBB",4); init(&c[0],a,0,4,0); aio_write(&c[0]); waitfor(&c[0]); memcpy(buf[1],"CCCC",4); init(&c[1],a,1,4,1); aio_write(&c[1]); waitfor(&c[1]);
  struct stat st; fstat(a,&st); P("7 O_APPEND two writes at offsets 0,1: size %lld (want 12) pos %lld\n",(long long)st.st_size,(long long)lseek(a,0,SEEK_CUR));
  /* 8. never-submitted aiocb */
  struct aiocb fresh; memset(&fresh,0,sizeof fresh); fresh.aio_fildes=f; errno=0; r=aio_error(&fresh); P("8a aio_error never-submitted: %d errno %d\n",r,errno);
  errno=0; ssize_t rr=aio_return(&fresh); P("8b aio_return never-submitted: %zd errno %d\n",rr,errno);
  errno=0; r=aio_cancel(f,&fresh); P("8c aio_cancel never-submitted: %d errno %d\n",r,errno);
  /* 9. cancel on a closed / bad fd */
  errno=0; r=aio_cancel(9999,NULL); P("9 aio_cancel(9999,NULL): %d errno %d\n",r,errno);
  return 0;}
