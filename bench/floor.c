// The kernel's floor for bench/scale.sh's /16 x 5 ports: sends every (host, port) SYN of
// 198.19.0.0/16 x {22,23,80,443,8080} from 198.18.0.1 with sendmmsg (BATCH a call) on one
// raw TCP socket, reads every answer with recvmmsg between batches, counts SYN-ACKs and
// RSTs, and prints its wall time and CPU. No user-space work beyond that: what is left is
// what the kernel charges for the packets. Bounded: one pass, then at most 2 s of waiting.
//
// Build: gcc -O2 -o /tmp/floor bench/floor.c
// Run in bench/scale.sh's scanner namespace (root): ip netns exec NS /tmp/floor [BATCH [MODE]]
// MODE: 0 plain, 1 don't fragment (IP ID 0, as portolan sends), 2 IP_HDRINCL.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>

static uint16_t csum(uint32_t sum, const uint8_t *p, int n) {
  for (int i = 0; i + 1 < n; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (n & 1) sum += p[n - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum;
}
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
  int batch = argc > 1 ? atoi(argv[1]) : 64; int mode = argc > 2 ? atoi(argv[2]) : 0;
  const uint16_t ports[5] = {22, 23, 80, 443, 8080};
  uint32_t src = ntohl(inet_addr("198.18.0.1")), base = ntohl(inet_addr("198.19.0.0"));
  uint16_t sport = 40123;
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_TCP);
  if (fd < 0) { perror("socket"); return 1; }
  int big = 32 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  if (mode & 1) { int v = IP_PMTUDISC_DO; setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v); }
  if (mode & 2) { int v = 1; setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &v, sizeof v); }
  // BPF: accept only tcp dport == sport (IPv4 header with IHL).
  struct sock_filter f[] = {
    {0xb1, 0, 0, 0},              // ldxb 4*([0]&0xf)
    {0x48, 0, 0, 2},              // ldh [x+2]
    {0x15, 0, 1, sport},          // jeq sport
    {0x06, 0, 0, 0xffff},
    {0x06, 0, 0, 0},
  };
  struct sock_fprog prog = {5, f};
  setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
  // a bound TCP socket reserves the port
  int r = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in b = {.sin_family = AF_INET, .sin_port = htons(sport)};
  bind(r, (void *)&b, sizeof b);
  uint64_t total = 65536 * 5, sent = 0, synack = 0, rst = 0;
  static uint8_t pk[256][40];
  static struct sockaddr_in to[256];
  static struct iovec iov[256];
  static struct mmsghdr m[256];
  static uint8_t rb[256][128];
  static struct iovec riov[256];
  static struct mmsghdr rm[256];
  for (int i = 0; i < 256; i++) {
    riov[i].iov_base = rb[i]; riov[i].iov_len = 128;
    rm[i].msg_hdr.msg_iov = &riov[i]; rm[i].msg_hdr.msg_iovlen = 1;
  }
  double t0 = now();
  uint64_t k = 0;
  // odd multiplier mod 2^19 > total: a permutation of [0, 2^19), skip >= total
  while (sent < total) {
    int n = 0;
    while (n < batch && k < (1u << 19)) {
      uint64_t x = (k++ * 2654435761u) & ((1u << 19) - 1);
      if (x >= total) continue;
      uint32_t dst = base + (x / 5);
      uint16_t dport = ports[x % 5];
      uint8_t *t = pk[n] + ((mode & 2) ? 20 : 0);
      memset(pk[n], 0, 40);
      t[0] = sport >> 8; t[1] = sport; t[2] = dport >> 8; t[3] = dport;
      uint32_t seq = (uint32_t)(dst * 2654435761u) ^ dport;
      t[4] = seq >> 24; t[5] = seq >> 16; t[6] = seq >> 8; t[7] = seq;
      t[12] = 5 << 4; t[13] = 0x02; t[14] = 0xff; t[15] = 0xff;
      uint32_t ps = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + 6 + 20;
      uint16_t c = csum(ps, t, 20);
      t[16] = c >> 8; t[17] = c;
      to[n].sin_family = AF_INET; to[n].sin_addr.s_addr = htonl(dst);
      iov[n].iov_base = t; iov[n].iov_len = 20;
      if (mode & 2) {
        uint8_t *h = pk[n];
        h[0] = 0x45; h[3] = 40; h[6] = 0x40; h[8] = 64; h[9] = 6;
        h[12] = src >> 24; h[13] = src >> 16; h[14] = src >> 8; h[15] = src;
        h[16] = dst >> 24; h[17] = dst >> 16; h[18] = dst >> 8; h[19] = dst;
        uint16_t hc = csum(0, h, 20); h[10] = hc >> 8; h[11] = hc;
        iov[n].iov_base = h; iov[n].iov_len = 40;
      }
      memset(&m[n].msg_hdr, 0, sizeof m[n].msg_hdr);
      m[n].msg_hdr.msg_name = &to[n]; m[n].msg_hdr.msg_namelen = sizeof to[n];
      m[n].msg_hdr.msg_iov = &iov[n]; m[n].msg_hdr.msg_iovlen = 1;
      n++;
    }
    int off = 0;
    while (off < n) {
      int s = sendmmsg(fd, m + off, n - off, 0);
      if (s <= 0) { struct pollfd p = {fd, POLLIN}; poll(&p, 1, 1); s = 0; }
      off += s;
      for (;;) {
        int got = recvmmsg(fd, rm, 256, MSG_DONTWAIT, NULL);
        if (got <= 0) break;
        for (int i = 0; i < got; i++) {
          uint8_t *ip = rb[i]; int ihl = (ip[0] & 15) * 4; uint8_t fl = ip[ihl + 13];
          if ((fl & 0x12) == 0x12) synack++; else if (fl & 4) rst++;
        }
        if (got < 256) break;
      }
    }
    sent += n;
  }
  double t1 = now();
  while (synack + rst < total && now() - t1 < 2.0) {
    struct pollfd p = {fd, POLLIN}; poll(&p, 1, 20);
    int got = recvmmsg(fd, rm, 256, MSG_DONTWAIT, NULL);
    for (int i = 0; i < got; i++) {
      uint8_t *ip = rb[i]; int ihl = (ip[0] & 15) * 4; uint8_t fl = ip[ihl + 13];
      if ((fl & 0x12) == 0x12) synack++; else if (fl & 4) rst++;
    }
  }
  double t2 = now();
  struct rusage ru; getrusage(RUSAGE_SELF, &ru);
  printf("sent %lu in %.3f s (%.0f pps); answers %lu synack %lu rst by %.3f s; user %.3f sys %.3f\n",
         sent, t1 - t0, sent / (t1 - t0), synack, rst, t2 - t0,
         ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
  return 0;
}
