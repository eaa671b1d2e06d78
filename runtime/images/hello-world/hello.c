/* Berth's hello-world: a static program with no C library, so the image holds one small file.
 * It greets as Docker's own hello-world image does ("Hello from Docker!"), so a learner following any guide that
 * starts with `docker run hello-world` sees the line the guide shows; the explanation below is Berth's own. */
static const char msg[] =
  "\n"
  "Hello from Docker!\n"
  "If you can read this, your Docker engine works:\n"
  " 1. the docker client asked the engine (dockerd) to run \"hello-world\";\n"
  " 2. the engine found the image (pulling it from a registry if needed);\n"
  " 3. it created a container from the image and started this program in it;\n"
  " 4. the engine streamed this output back to your client, which printed it.\n"
  "\n"
  "This is a local build made for Berth (no Docker Hub needed), not Docker's own image.\n"
  "Try next:  docker run -it debian bash\n"
  "\n";

static long sys3(long n, long a, long b, long c) {
  long r;
  __asm__ volatile ("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}

void _start(void) {
  sys3(1, 1, (long)msg, sizeof msg - 1); /* write(1, msg, len) */
  sys3(60, 0, 0, 0);                     /* exit(0) */
  for (;;) {}
}
