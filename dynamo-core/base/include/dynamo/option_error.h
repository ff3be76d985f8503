// OptionError: the message of a Boost.Program_options error, safely.
//
// Boost builds an option error's message by replacing placeholders such as
// %value% with the offending text, again and again until none is left: a
// value that itself holds "%value%" (`dynamod --replicas %value%`, or a
// config line) makes what() loop forever. Found by fuzzing the config file
// (tests/fuzz/fuzz_config.cc). This formats the same message with every
// '%' of the substituted texts masked, then unmasked.
//
// Header-only; needs Boost.Program_options' headers (its users link it).
#pragma once

#include <map>
#include <string>

#include "boost/program_options/errors.hpp"

namespace dynamo {

namespace option_error_detail {
// Reads the protected substitutions of an error (pointer to member through
// a derived class: the standard way to reach a protected member of an
// object whose class we do not own).
struct Substitutions : boost::program_options::error_with_option_name {
  static const std::map<std::string, std::string>& Of(
      const boost::program_options::error_with_option_name& e) {
    return e.*(&Substitutions::m_substitutions);
  }
};
}  // namespace option_error_detail

inline std::string OptionError(const boost::program_options::error& e) {
  const auto* named = dynamic_cast<const boost::program_options::error_with_option_name*>(&e);
  if (named == nullptr) return e.what();
  constexpr char kMask = '\x01';
  boost::program_options::error_with_option_name copy = *named;
  for (const auto& [token, text] : option_error_detail::Substitutions::Of(*named)) {
    std::string masked = text;
    for (char& c : masked) {
      if (c == '%') c = kMask;
    }
    copy.set_substitute(token, masked);
  }
  std::string message = copy.what();
  for (char& c : message) {
    if (c == kMask) c = '%';
  }
  return message;
}

}  // namespace dynamo
