// CURVE keys and who may do what (DESIGN.md 3.7, docs/security.md).
//
// A key is 40 characters of Z85 (ZeroMQ's text form of a 32-byte Curve25519
// key). A node has a key pair, its secret kept in a file only its owner can
// read; it admits the public keys listed in its authorized-keys file, each
// with a role:
//
//   client  data commands (get, put, del), status, ring, ping
//   admin   a client's commands, and join, leave, remove
//   peer    everything, the messages between nodes included
//
// A peer's line may also name the endpoint (--listen) that node serves on:
// that is how a node knows the server key of each node it connects to, as
// ssh's known_hosts does. The file, one key a line:
//
//   # comment
//   rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7  peer   tcp://10.0.0.2:7101
//   Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID  admin
//   D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs  client
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "dynamo/status.h"

namespace dynamo::curve {

inline constexpr size_t kKeyChars = 40;

// Whether the library this process runs with can do CURVE (libzmq built
// with libsodium or its own tweetnacl).
bool Available();

// Whether text is a key: 40 characters of Z85 that decode to 32 bytes.
bool IsKey(std::string_view text);

struct KeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85; never logged or printed (but by keygen)
};

Result<KeyPair> Generate();

// The key-pair file: comment lines, "public-key = KEY" and "secret-key =
// KEY". WriteKeyFiles writes PREFIX.key (the pair, mode 0600) and PREFIX.pub
// (the public key alone, one line) and never overwrites either.
std::string KeyPairFileText(const KeyPair& pair);
Status WriteKeyFiles(const KeyPair& pair, const std::string& prefix);

// Reads a key-pair file. Refused: a file that others than its owner may
// read or write, a missing or malformed key, a public key that is not the
// secret key's. Errors name the file and never hold the secret.
Result<KeyPair> ReadKeyPairFile(const std::string& path);

// A public key given on a command line: the key itself, or a file holding it
// (a .pub file, or a key-pair file: its public key).
Result<std::string> ReadPublicKey(const std::string& key_or_file);

// kNone: a key that was admitted, then revoked (SIGHUP) while connected.
// Without CURVE every caller is trusted: kPeer.
enum class Role : uint8_t { kNone = 0, kClient = 1, kAdmin = 2, kPeer = 3 };
const char* RoleName(Role role);

class AuthorizedKeys {
 public:
  // Errors name the file and the line.
  static Result<AuthorizedKeys> Load(const std::string& path);
  static Result<AuthorizedKeys> Parse(std::string_view text, const std::string& name);

  // The role of a public key, or nullptr when it is not listed.
  const Role* RoleOf(std::string_view public_key) const;
  // The public key of the peer that serves at endpoint, or nullptr.
  const std::string* KeyAt(std::string_view endpoint) const;
  const std::unordered_map<std::string, std::string>& endpoints() const { return at_; }
  size_t size() const { return roles_.size(); }

 private:
  std::unordered_map<std::string, Role> roles_;
  std::unordered_map<std::string, std::string> at_;  // endpoint -> peer key
};

// A node's CURVE settings: its own pair and whom it admits. Shared by the
// loop and the node; replaced whole (never changed in place) on a reload.
struct ServerKeys {
  KeyPair pair;
  std::shared_ptr<const AuthorizedKeys> authorized;
};

// A client's: its pair, and the public key of the node(s) it talks to.
struct ClientKeys {
  KeyPair pair;
  std::string server_public_key;
};

}  // namespace dynamo::curve
