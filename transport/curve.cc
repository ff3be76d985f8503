#include "dynamo/transport/curve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

namespace dynamo::curve {
namespace {

std::string_view Trim(std::string_view s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

Result<std::string> ReadWhole(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno("cannot read " + path, errno);
  std::string text;
  char buf[4096];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > limit) {
      return Status::InvalidArgument(path + ": larger than " + std::to_string(limit) + " bytes");
    }
  }
  return text;
}

// The lines of a key-pair file: "public-key = K" and "secret-key = K".
Status ParsePairText(std::string_view text, const std::string& name, KeyPair* pair) {
  std::istringstream lines{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    std::string_view l = Trim(line);
    if (l.empty() || l[0] == '#') continue;
    const size_t eq = l.find('=');
    const std::string where = name + ":" + std::to_string(number) + ": ";
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument(where + "expected 'public-key = KEY' or 'secret-key = KEY'");
    }
    const std::string_view field = Trim(l.substr(0, eq));
    const std::string_view value = Trim(l.substr(eq + 1));
    std::string* into = field == "public-key"   ? &pair->public_key
                        : field == "secret-key" ? &pair->secret_key
                                                : nullptr;
    if (into == nullptr) {
      return Status::InvalidArgument(where + "unknown field '" + std::string(field) + "'");
    }
    if (!IsKey(value)) {
      // Never echo the value: it may be (most of) a secret.
      return Status::InvalidArgument(where + std::string(field) +
                                     " is not a key (40 characters of Z85)");
    }
    *into = std::string(value);
  }
  return Status::OK();
}

}  // namespace

bool Available() { return zmq_has("curve") != 0; }

bool IsKey(std::string_view text) {
  if (text.size() != kKeyChars) return false;
  uint8_t raw[32];
  const std::string z(text);
  return zmq_z85_decode(raw, z.c_str()) != nullptr;
}

Result<KeyPair> Generate() {
  char pub[kKeyChars + 1], sec[kKeyChars + 1];
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status::Unsupported("this libzmq cannot make CURVE keys (built without libsodium?)");
  }
  return KeyPair{pub, sec};
}

std::string KeyPairFileText(const KeyPair& pair) {
  return "# dynamo CURVE key pair (dynamoctl keygen). The secret key must stay\n"
         "# private: keep this file mode 0600, readable by its owner only.\n"
         "public-key = " +
         pair.public_key + "\nsecret-key = " + pair.secret_key + "\n";
}

Status WriteKeyFiles(const KeyPair& pair, const std::string& prefix) {
  const std::string key_path = prefix + ".key", pub_path = prefix + ".pub";
  for (const auto& p : {key_path, pub_path}) {
    struct stat st;
    if (::lstat(p.c_str(), &st) == 0) {
      return Status::InvalidArgument(p + " exists: not overwriting a key (remove it first)");
    }
  }
  auto write = [](const std::string& path, mode_t mode, const std::string& text) -> Status {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return Status::FromErrno("cannot create " + path, errno);
    // The mode asked for may have been narrowed by the umask, never widened;
    // set it exactly.
    if (::fchmod(fd, mode) != 0 ||
        ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::fsync(fd) != 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return Status::FromErrno("cannot write " + path, err);
    }
    ::close(fd);
    return Status::OK();
  };
  if (Status s = write(key_path, 0600, KeyPairFileText(pair)); !s.ok()) return s;
  if (Status s = write(pub_path, 0644, pair.public_key + "\n"); !s.ok()) {
    ::unlink(key_path.c_str());
    return s;
  }
  return Status::OK();
}

Result<KeyPair> ReadKeyPairFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("cannot read " + path, errno);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::InvalidArgument(path + " holds a secret key but others may access it (mode " +
                                   mode + "): chmod 600 " + path);
  }
  auto text = ReadWhole(path, 64 << 10);
  if (!text.ok()) return text.status();
  KeyPair pair;
  if (Status s = ParsePairText(*text, path, &pair); !s.ok()) return s;
  if (pair.secret_key.empty()) return Status::InvalidArgument(path + ": no secret-key line");
  char derived[kKeyChars + 1];
  if (zmq_curve_public(derived, pair.secret_key.c_str()) != 0) {
    return Status::InvalidArgument(path + ": the secret key is not usable");
  }
  if (pair.public_key.empty()) {
    pair.public_key = derived;
  } else if (pair.public_key != derived) {
    return Status::InvalidArgument(path + ": public-key is not the public key of secret-key");
  }
  return pair;
}

Result<std::string> ReadPublicKey(const std::string& key_or_file) {
  if (IsKey(key_or_file)) return key_or_file;
  auto bad = Status::InvalidArgument("'" + key_or_file +
                                     "' is neither a CURVE public key (40 characters of Z85) "
                                     "nor a file holding one");
  struct stat st;
  if (::stat(key_or_file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return bad;
  auto text = ReadWhole(key_or_file, 64 << 10);
  if (!text.ok()) return text.status();
  if (std::string_view t = Trim(*text); IsKey(t)) return std::string(t);
  KeyPair pair;
  if (ParsePairText(*text, key_or_file, &pair).ok() && !pair.public_key.empty()) {
    return pair.public_key;
  }
  return Status::InvalidArgument(key_or_file + ": no CURVE public key in it");
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kNone:
      return "none (revoked)";
    case Role::kClient:
      return "client";
    case Role::kAdmin:
      return "admin";
    case Role::kPeer:
      return "peer";
  }
  return "?";
}

Result<AuthorizedKeys> AuthorizedKeys::Load(const std::string& path) {
  auto text = ReadWhole(path, 16 << 20);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

Result<AuthorizedKeys> AuthorizedKeys::Parse(std::string_view text, const std::string& name) {
  AuthorizedKeys keys;
  std::unordered_map<std::string, int> key_line, endpoint_line;  // where each was listed
  std::istringstream lines{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    const auto f = Fields(line);
    const std::string where = name + ":" + std::to_string(number) + ": ";
    // '#' is a Z85 character: a line is a key's when its first field is one.
    if (f.empty() || (!IsKey(f[0]) && f[0][0] == '#')) continue;
    if (!IsKey(f[0])) {
      return Status::InvalidArgument(where +
                                     "expected 'PUBLIC_KEY ROLE [ENDPOINT]' (a key is 40 "
                                     "characters of Z85; roles: peer, admin, client)");
    }
    size_t n = f.size();
    for (size_t i = 1; i < f.size(); ++i) {
      if (f[i][0] == '#') {  // a comment to the end of the line
        n = i;
        break;
      }
    }
    if (n < 2) return Status::InvalidArgument(where + "no role (peer, admin or client)");
    Role role;
    if (f[1] == "peer") {
      role = Role::kPeer;
    } else if (f[1] == "admin") {
      role = Role::kAdmin;
    } else if (f[1] == "client") {
      role = Role::kClient;
    } else {
      return Status::InvalidArgument(where + "unknown role '" + std::string(f[1]) +
                                     "' (peer, admin or client)");
    }
    const std::string key(f[0]);
    if (auto it = key_line.find(key); it != key_line.end()) {
      return Status::InvalidArgument(where + "this key is listed already, on line " +
                                     std::to_string(it->second));
    }
    key_line[key] = number;
    keys.roles_[key] = role;
    if (n >= 3) {
      const std::string endpoint(f[2]);
      if (role != Role::kPeer) {
        return Status::InvalidArgument(where + "only a peer's line names an endpoint");
      }
      if (endpoint.rfind("tcp://", 0) != 0 && endpoint.rfind("ipc://", 0) != 0) {
        return Status::InvalidArgument(where + "'" + endpoint +
                                       "' is not an endpoint (tcp://HOST:PORT or ipc://PATH)");
      }
      if (auto it = endpoint_line.find(endpoint); it != endpoint_line.end()) {
        return Status::InvalidArgument(where + endpoint + " is named already, on line " +
                                       std::to_string(it->second));
      }
      endpoint_line[endpoint] = number;
      keys.at_[endpoint] = key;
    }
    if (n > 3) return Status::InvalidArgument(where + "too many fields");
  }
  return keys;
}

const Role* AuthorizedKeys::RoleOf(std::string_view public_key) const {
  auto it = roles_.find(std::string(public_key));
  return it == roles_.end() ? nullptr : &it->second;
}

const std::string* AuthorizedKeys::KeyAt(std::string_view endpoint) const {
  auto it = at_.find(std::string(endpoint));
  return it == at_.end() ? nullptr : &it->second;
}

}  // namespace dynamo::curve
