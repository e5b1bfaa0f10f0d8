/*
 * vsock: a static riscv64 Linux program without libc (raw system calls) for Vireo's virtio-vsock test
 * (test/linux/vsock.test.ts). AF_VSOCK stream sockets, the host being CID 2:
 *
 *   vsock connect PORT MESSAGE   connects to the host's PORT, sends "MESSAGE\n", reads one line back
 *                                and prints "REPLY <line>"
 *   vsock listen PORT            listens on PORT (any CID), prints "LISTENING <port>", accepts one
 *                                connection, reads a line, prints "GOT <line>", answers "echo:<line>\n",
 *                                then reads until end of stream and closes
 *   vsock bulk PORT N            connects to the host's PORT, sends N bytes of pattern (i * 31 + 7) & 255,
 *                                shuts down its sending side, reads until end of stream and prints
 *                                "BULK sent=<N> got=<bytes> fnv=<FNV-1a 32 of them, 8 hex digits>"
 *
 * Exit status 0, or 1 with a `VSOCK error <call> errno=<n>` line when a system call fails.
 */
typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

enum {
  SYS_close = 57,
  SYS_read = 63,
  SYS_write = 64,
  SYS_exit_group = 94,
  SYS_socket = 198,
  SYS_bind = 200,
  SYS_listen = 201,
  SYS_accept = 202,
  SYS_connect = 203,
  SYS_shutdown = 210,
};
#define AF_VSOCK 40
#define SOCK_STREAM 1
#define SHUT_WR 1
#define VMADDR_CID_ANY 0xffffffffu
#define VMADDR_CID_HOST 2u

struct sockaddr_vm {
  u16 svm_family;
  u16 svm_reserved1;
  u32 svm_port;
  u32 svm_cid;
  u8 svm_flags;
  u8 svm_zero[3];
};

static i64 sys(i64 n, i64 a0, i64 a1, i64 a2) {
  register i64 r_a0 __asm__("a0") = a0;
  register i64 r_a1 __asm__("a1") = a1;
  register i64 r_a2 __asm__("a2") = a2;
  register i64 r_a7 __asm__("a7") = n;
  __asm__ volatile("ecall" : "+r"(r_a0) : "r"(r_a1), "r"(r_a2), "r"(r_a7) : "memory");
  return r_a0;
}

static u64 slen(const char *s) {
  u64 n = 0;
  while (s[n]) n++;
  return n;
}

static char *str(char *p, const char *s) {
  while (*s) *p++ = *s++;
  return p;
}

static char *num(char *p, u64 v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *p++ = tmp[--n];
  return p;
}

static char *hex8(char *p, u32 v) {
  for (int i = 7; i >= 0; i--) *p++ = "0123456789abcdef"[(v >> (4 * i)) & 15];
  return p;
}

static u64 parse(const char *s) {
  u64 v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (u64)(*s++ - '0');
  return v;
}

/* Writes all of buf[0..n) to fd; returns 0 or a negative errno. */
static i64 write_all(i64 fd, const char *buf, u64 n) {
  while (n > 0) {
    i64 r = sys(SYS_write, fd, (i64)buf, (i64)n);
    if (r < 0) return r;
    buf += r;
    n -= (u64)r;
  }
  return 0;
}

static void put(const char *s) { write_all(1, s, slen(s)); }

static __attribute__((noreturn)) void quit(int code) {
  for (;;) sys(SYS_exit_group, code, 0, 0);
}

static void check(const char *what, i64 r) {
  if (r >= 0) return;
  char line[96];
  char *p = str(line, "VSOCK error ");
  p = str(p, what);
  p = str(p, " errno=");
  p = num(p, (u64)-r);
  *p++ = '\n';
  *p = 0;
  put(line);
  quit(1);
}

static struct sockaddr_vm address(u32 cid, u32 port) {
  struct sockaddr_vm a;
  u8 *b = (u8 *)&a;
  for (u64 i = 0; i < sizeof a; i++) b[i] = 0;
  a.svm_family = AF_VSOCK;
  a.svm_port = port;
  a.svm_cid = cid;
  return a;
}

static i64 stream_socket(void) {
  i64 fd = sys(SYS_socket, AF_VSOCK, SOCK_STREAM, 0);
  check("socket", fd);
  return fd;
}

static i64 connect_host(u32 port) {
  i64 fd = stream_socket();
  struct sockaddr_vm a = address(VMADDR_CID_HOST, port);
  check("connect", sys(SYS_connect, fd, (i64)&a, sizeof a));
  return fd;
}

static char line[4096];

/* Reads one line (without its newline) into `line`; returns its length. */
static u64 read_line(i64 fd) {
  u64 n = 0;
  while (n < sizeof line - 1) {
    i64 r = sys(SYS_read, fd, (i64)(line + n), 1);
    check("read", r);
    if (r == 0 || line[n] == '\n') break;
    n++;
  }
  line[n] = 0;
  return n;
}

static char out[4200];

static int do_connect(u32 port, const char *message) {
  i64 fd = connect_host(port);
  char *p = str(out, message);
  *p++ = '\n';
  check("write", write_all(fd, out, (u64)(p - out)));
  read_line(fd);
  p = str(str(out, "REPLY "), line);
  *p++ = '\n';
  *p = 0;
  put(out);
  sys(SYS_close, fd, 0, 0);
  return 0;
}

static int do_listen(u32 port) {
  i64 fd = stream_socket();
  struct sockaddr_vm a = address(VMADDR_CID_ANY, port);
  check("bind", sys(SYS_bind, fd, (i64)&a, sizeof a));
  check("listen", sys(SYS_listen, fd, 1, 0));
  char *p = num(str(out, "LISTENING "), port);
  *p++ = '\n';
  *p = 0;
  put(out);
  i64 c = sys(SYS_accept, fd, 0, 0);
  check("accept", c);
  u64 n = read_line(c);
  p = str(str(out, "GOT "), line);
  *p++ = '\n';
  *p = 0;
  put(out);
  p = str(str(out, "echo:"), line);
  *p++ = '\n';
  check("write", write_all(c, out, (u64)(p - out)));
  (void)n;
  /* Until the host ends its side. */
  for (;;) {
    i64 r = sys(SYS_read, c, (i64)line, sizeof line);
    check("read", r);
    if (r == 0) break;
  }
  sys(SYS_close, c, 0, 0);
  sys(SYS_close, fd, 0, 0);
  return 0;
}

static char chunk[16384];

static int do_bulk(u32 port, u64 total) {
  i64 fd = connect_host(port);
  u64 sent = 0;
  while (sent < total) {
    u64 k = total - sent < sizeof chunk ? total - sent : sizeof chunk;
    for (u64 i = 0; i < k; i++) chunk[i] = (char)(((sent + i) * 31 + 7) & 255);
    check("write", write_all(fd, chunk, k));
    sent += k;
  }
  check("shutdown", sys(SYS_shutdown, fd, SHUT_WR, 0));
  u32 h = 2166136261u;
  u64 got = 0;
  for (;;) {
    i64 r = sys(SYS_read, fd, (i64)chunk, sizeof chunk);
    check("read", r);
    if (r == 0) break;
    for (i64 i = 0; i < r; i++) {
      h ^= (u8)chunk[i];
      h *= 16777619u;
    }
    got += (u64)r;
  }
  sys(SYS_close, fd, 0, 0);
  char *p = num(str(out, "BULK sent="), sent);
  p = num(str(p, " got="), got);
  p = hex8(str(p, " fnv="), h);
  *p++ = '\n';
  *p = 0;
  put(out);
  return 0;
}

static int same(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

int entry(i64 argc, char **argv) {
  if (argc >= 4 && same(argv[1], "connect")) return do_connect((u32)parse(argv[2]), argv[3]);
  if (argc >= 3 && same(argv[1], "listen")) return do_listen((u32)parse(argv[2]));
  if (argc >= 4 && same(argv[1], "bulk")) return do_bulk((u32)parse(argv[2]), parse(argv[3]));
  put("usage: vsock connect PORT MESSAGE | listen PORT | bulk PORT N\n");
  return 2;
}

/* The kernel starts us with sp -> argc, argv[0..argc-1], NULL, envp...; gp is never used (linked with
 * --no-relax). */
__asm__(".section .text._start\n"
        ".globl _start\n"
        "_start:\n"
        "  ld a0, 0(sp)\n"
        "  addi a1, sp, 8\n"
        "  andi sp, sp, -16\n"
        "  call entry\n"
        "  li a7, 94\n"
        "  ecall\n");
