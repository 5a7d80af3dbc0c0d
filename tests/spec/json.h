// A minimal JSON reader for wast2json's output (objects, arrays, strings,
// integers, true/false/null); enough for the spec harness, no more.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace waverless::spec {

struct Json {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = Kind::kNull;
  std::string text;  // string value, or the number's digits
  std::vector<Json> items;
  std::map<std::string, Json> fields;

  const Json* get(const std::string& k) const {
    auto it = fields.find(k);
    return it == fields.end() ? nullptr : &it->second;
  }
  std::string str(const std::string& k) const {
    const Json* j = get(k);
    return j == nullptr ? "" : j->text;
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}
  bool parse(Json* out) { return value(out) && (skip(), pos_ == s_.size()); }

 private:
  void skip() {
    while (pos_ < s_.size() && isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool value(Json* out) {
    skip();
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    if (c == '{') {
      out->kind = Json::Kind::kObject;
      ++pos_;
      skip();
      if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
      for (;;) {
        Json key;
        skip();
        if (!string(&key)) return false;
        skip();
        if (pos_ >= s_.size() || s_[pos_++] != ':') return false;
        if (!value(&out->fields[key.text])) return false;
        skip();
        if (pos_ >= s_.size()) return false;
        if (s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        return s_[pos_++] == '}';
      }
    }
    if (c == '[') {
      out->kind = Json::Kind::kArray;
      ++pos_;
      skip();
      if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
      for (;;) {
        out->items.emplace_back();
        if (!value(&out->items.back())) return false;
        skip();
        if (pos_ >= s_.size()) return false;
        if (s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        return s_[pos_++] == ']';
      }
    }
    if (c == '"') return string(out);
    if (s_.substr(pos_, 4) == "true" || s_.substr(pos_, 4) == "null") {
      out->kind = s_[pos_] == 't' ? Json::Kind::kBool : Json::Kind::kNull;
      out->text = s_.substr(pos_, 4);
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "false") {
      out->kind = Json::Kind::kBool;
      out->text = "false";
      pos_ += 5;
      return true;
    }
    out->kind = Json::Kind::kNumber;
    size_t start = pos_;
    while (pos_ < s_.size() && (isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '-' ||
                                s_[pos_] == '+' || s_[pos_] == '.')) {
      ++pos_;
    }
    out->text = s_.substr(start, pos_ - start);
    return pos_ > start;
  }
  bool string(Json* out) {
    if (pos_ >= s_.size() || s_[pos_] != '"') return false;
    ++pos_;
    out->kind = Json::Kind::kString;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c != '\\') {
        out->text += c;
        continue;
      }
      if (pos_ >= s_.size()) return false;
      char e = s_[pos_++];
      switch (e) {
        case 'n':
          out->text += '\n';
          break;
        case 't':
          out->text += '\t';
          break;
        case 'r':
          out->text += '\r';
          break;
        case 'b':
          out->text += '\b';
          break;
        case 'f':
          out->text += '\f';
          break;
        case 'u': {
          unsigned cp = std::stoul(std::string(s_.substr(pos_, 4)), nullptr, 16);
          pos_ += 4;
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
            unsigned lo = std::stoul(std::string(s_.substr(pos_ + 2, 4)), nullptr, 16);
            pos_ += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          if (cp >= 0x10000) {
            out->text += static_cast<char>(0xF0 | (cp >> 18));
            out->text += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out->text += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out->text += static_cast<char>(0x80 | (cp & 0x3F));
          } else if (cp < 0x80) {
            out->text += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out->text += static_cast<char>(0xC0 | (cp >> 6));
            out->text += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            out->text += static_cast<char>(0xE0 | (cp >> 12));
            out->text += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out->text += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default:
          out->text += e;
      }
    }
    return pos_++ < s_.size();
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace waverless::spec
