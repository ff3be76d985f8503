#include "dynamo/key_hash.h"

#include <openssl/evp.h>

#include <bit>

namespace dynamo {

uint64_t KeyHash(std::string_view key) {
  // One digest context per thread, reused: EVP_Digest would allocate and
  // free one on every call. The algorithm is fetched once: OpenSSL 3 looks
  // EVP_md5() up in its providers again on every init (a twentieth of a
  // rebuilding node's time went there).
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  static const EVP_MD* const md5 = [] {
    const EVP_MD* md = EVP_MD_fetch(nullptr, "MD5", nullptr);
    return md != nullptr ? md : EVP_md5();
  }();
#else
  static const EVP_MD* const md5 = EVP_md5();  // 1.1 looks nothing up
#endif
  struct Ctx {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Ctx() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Ctx t;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestInit_ex(t.ctx, md5, nullptr);
  EVP_DigestUpdate(t.ctx, key.data(), key.size());
  EVP_DigestFinal_ex(t.ctx, md, &len);
  uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h = (h << 8) | md[i];
  return h;
}

namespace {
unsigned Bits(uint32_t q) { return static_cast<unsigned>(std::countr_zero(q)); }
}  // namespace

uint32_t PartitionOf(uint64_t key_hash, uint32_t q) {
  const unsigned bits = Bits(q);
  return bits == 0 ? 0 : static_cast<uint32_t>(key_hash >> (64 - bits));
}

HashRange PartitionHashRange(uint32_t partition, uint32_t q) {
  const unsigned bits = Bits(q);
  if (bits == 0) return {0, UINT64_MAX};
  const unsigned shift = 64 - bits;
  const uint64_t lo = static_cast<uint64_t>(partition) << shift;
  return {lo, lo + ((uint64_t{1} << shift) - 1)};
}

}  // namespace dynamo
