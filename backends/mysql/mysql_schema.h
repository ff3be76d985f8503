// The mysql engine's table: created when missing, checked when present
// (layout in mysql_engine.cc), never altered or dropped.
#pragma once

#include <cppconn/connection.h>

#include <string>

#include "mysql_options.h"

namespace dynamo::mysql {

// Creates the table of opts when missing; returns why an existing one is
// unfit (empty when fine). Throws sql::SQLException.
std::string EnsureTable(sql::Connection& c, const Options& opts);

}  // namespace dynamo::mysql
