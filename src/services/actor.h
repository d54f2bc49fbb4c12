// Actor: who makes a request, as services see it after authentication.
#pragma once

#include <string>

#include "model/user.h"

namespace puddle {

struct Actor {
  std::string user_id;
  std::string username;
  Role role = Role::kUser;
  // Hash of the session the request came with, if it is a browser session.
  std::string session_hash;
  // Hash of the API token the request came with, if any.
  std::string token_hash;

  bool IsAdmin() const { return role == Role::kAdmin; }
};

}  // namespace puddle
