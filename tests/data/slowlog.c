/* LD_PRELOAD shim for tests: every fflush from a thread other than the main one takes 5 ms more,
   as when a busy CPU leaves llama.cpp's log thread behind the program it logs for. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int fflush(FILE *f) {
    static int (*real)(FILE *);
    if (!real) real = (int (*)(FILE *))dlsym(RTLD_NEXT, "fflush");
    if (syscall(SYS_gettid) != getpid()) usleep(5000);
    return real(f);
}
