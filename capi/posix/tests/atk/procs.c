#include "common.h"
static char b[8][64];
static void init(struct aiocb*c,int fd,int k,size_t n){memset(c,0,sizeof *c);c->aio_fildes=fd;c->aio_buf=b[k];c->aio_nbytes=n;}
static struct aiocb shared; static volatile int go; static int sr[2], se[2];
static void* th(void*a){ int k=(int)(long)a; while(!go); errno=0; sr[k]=aio_read(&shared); se[k]=errno; return 0;}
static void onusr(int s){(void)s;}
int main(int argc,char**argv){
  alarm(60);
  if(argc>2 && !strcmp(argv[1],"exec")){ /* after exec: fresh */ int f=open("/etc/passwd",O_RDONLY); struct aiocb c; init(&c,f,0,8); int r=aio_read(&c); const struct aiocb*l[1]={&c}; aio_suspend(l,1,0);
    P("E exec'd image: aio_read %d err %d ret %zd\n",r,aio_error(&c),aio_return(&c)); return 0;}
  int p[2]; pipe(p); struct aiocb c0; init(&c0,p[0],0,4);
  c0.aio_sigevent.sigev_notify=SIGEV_SIGNAL; c0.aio_sigevent.sigev_signo=SIGUSR2;
  signal(SIGUSR2,onusr); aio_read(&c0);
  /* F: fork with a request in flight and a service thread; child: aio_error, cancel, own request, SIGEV_THREAD */
  pid_t pid=fork();
  if(pid==0){ alarm(10); errno=0; int e=aio_error(&c0); int ee=errno; int cr=aio_cancel(p[0],&c0); int cn=aio_cancel(p[0],NULL);
    int f=open("/etc/passwd",O_RDONLY); struct aiocb c; init(&c,f,1,8); c.aio_sigevent.sigev_notify=SIGEV_SIGNAL;c.aio_sigevent.sigev_signo=SIGUSR1;
    sigset_t s; sigemptyset(&s); sigaddset(&s,SIGUSR1); sigprocmask(SIG_BLOCK,&s,0);
    int r=aio_read(&c); siginfo_t si; struct timespec t={3,0}; int sg=sigtimedwait(&s,&si,&t);
    /* child pipe read with signal only: needs child's own service thread */
    int q[2]; pipe(q); struct aiocb d; init(&d,q[0],2,4); d.aio_sigevent.sigev_notify=SIGEV_SIGNAL;d.aio_sigevent.sigev_signo=SIGUSR1; aio_read(&d); write(q[1],"zz",2);
    int sg2=sigtimedwait(&s,&si,&t);
    P("F child: aio_error(parent cb) %d errno %d; cancel(cb) %d cancel(NULL) %d; own read %d sig %d err %d ret %zd; own pipe read sig %d err %d\n",e,ee,cr,cn,r,sg,aio_error(&c),aio_return(&c),sg2,aio_error(&d));
    _exit(0);}
  int st; waitpid(pid,&st,0); P("F child exit status %d\n",st);
  write(p[1],"abcd",4); const struct aiocb*l[1]={&c0}; struct timespec t={3,0}; int r=aio_suspend(l,1,&t);
  P("F parent's in-flight pipe read after fork: suspend %d err %d ret %zd\n",r,aio_error(&c0),aio_return(&c0));
  /* G: same aiocb from two threads */
  int ok=0,dbl=0; int f=open("/etc/passwd",O_RDONLY);
  int q[2]; pipe(q);
  for(int it=0;it<(is_ours()?300:0);it++){ memset(&shared,0,sizeof shared); shared.aio_fildes=(it&1)?q[0]:f; shared.aio_buf=b[3]; shared.aio_nbytes=1; go=0;
    pthread_t a,bb; pthread_create(&a,0,th,(void*)0); pthread_create(&bb,0,th,(void*)1); go=1; pthread_join(a,0); pthread_join(bb,0);
    if(it&1){ int both = (sr[0]==0 && sr[1]==0); if(both)dbl++; aio_cancel(q[0],NULL); while(aio_error(&shared)==EINPROGRESS); }
    else { l[0]=&shared; while(aio_error(&shared)==EINPROGRESS) aio_suspend(l,1,0);} aio_return(&shared); ok++;}
  int nq=0; { int n; ioctl(q[0],FIONREAD,&n); nq=n; }
  P("G same aiocb on a pipe from two threads: both accepted %d/150 times (POSIX undefined; ours says EINVAL for the second)\n",dbl);
  /* H: dup2 over an fd with a pipe read in flight, then cancel by fd number, then write to old pipe */
  int a1[2],a2[2]; pipe(a1); pipe(a2); struct aiocb h; init(&h,a1[0],4,4); aio_read(&h);
  usleep(100000); int keep=dup(a1[0]); dup2(a2[0],a1[0]); /* fd number now names pipe 2 */
  write(a2[1],"2222",4); usleep(100000); int eh=aio_error(&h);
  write(a1[1],"1111",4); l[0]=&h; t.tv_sec=2; aio_suspend(l,1,&t);
  P("H dup2 over in-flight read: err before write-to-old %d, after %d, data %.4s (POSIX: the request was made on the old file)\n",eh,aio_error(&h),b[4]);
  (void)keep;
  /* I: close fd while in flight (pipe read), then cancel */
  int c2[2]; pipe(c2); struct aiocb ci; init(&ci,c2[0],5,4); aio_read(&ci); close(c2[0]); errno=0; r=aio_cancel(c2[0],&ci);
  P("I close while in flight: aio_cancel %d errno %d; aio_error %d\n",r,errno,aio_error(&ci));
  signal(SIGPIPE,SIG_IGN); write(c2[1],"x",1); usleep(100000); P("I after writing to the pipe: aio_error %d\n",aio_error(&ci));
  /* E: exec with requests in flight */
  struct aiocb ce; int c3[2]; pipe(c3); init(&ce,c3[0],6,4); aio_read(&ce);
  fflush(stdout); char self[256]; ssize_t n=readlink("/proc/self/exe",self,255); self[n]=0;
  execl(self,self,"exec","x",(char*)0); perror("exec"); return 1;}
