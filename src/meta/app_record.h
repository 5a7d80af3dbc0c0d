// The record of which app versions the cluster serves, in the raft-replicated
// map (meta/raft_log): key "app/<name>", value the app's version (the content
// hash meta::AppRegistry computes). A put records a deploy; an erase, and only
// an erase, records a removal: an app missing from a partly applied map is
// not removed. Other keys of the map belong to other records.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace waverless::meta {

struct AppRecord {
  std::string name;
  std::string version;  // empty: the app is removed (the change is an erase)
};

// The map key of app `name`.
std::string appRecordKey(std::string_view name);

// The app a changed map key records; nullopt for keys of other records (and
// for "app/" alone, which names no app).
std::optional<std::string> appOfRecordKey(std::string_view key);

// {name: version} of every app recorded in a map snapshot.
std::map<std::string, std::string> recordedApps(const std::map<std::string, std::string>& map);

}  // namespace waverless::meta
