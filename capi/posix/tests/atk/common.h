#define _GNU_SOURCE
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/resource.h>
#define P(...) do { printf(__VA_ARGS__); fflush(stdout); } while (0)
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static int is_ours(void){return getenv("LD_PRELOAD")!=NULL;}
/* find an eventfd this program did not create: returns fd or -1 */
static int find_lib_eventfd(int except){
  DIR*d=opendir("/proc/self/fd");struct dirent*e;int r=-1;char p[64],l[256];
  while((e=readdir(d))){int fd=atoi(e->d_name); if(fd<3||fd==dirfd(d)||fd==except)continue;
    snprintf(p,sizeof p,"/proc/self/fd/%d",fd); ssize_t n=readlink(p,l,sizeof l-1); if(n<0)continue; l[n]=0;
    if(strstr(l,"eventfd")){r=fd;break;}}
  closedir(d);return r;}
