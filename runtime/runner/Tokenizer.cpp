//===- Tokenizer.cpp - a byte-level BPE tokenizer.json for --sample -------===//

#include "runtime/runner/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>

namespace pipecrun {

namespace {

/// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
/// the others for code points 256 and up, in byte order.
std::vector<uint32_t> byteCodePoints() {
  std::vector<uint32_t> cp(256, 0);
  std::vector<bool> direct(256, false);
  for (int b = '!'; b <= '~'; ++b)
    direct[size_t(b)] = true;
  for (int b = 0xA1; b <= 0xAC; ++b)
    direct[size_t(b)] = true;
  for (int b = 0xAE; b <= 0xFF; ++b)
    direct[size_t(b)] = true;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b)
    cp[size_t(b)] = direct[size_t(b)] ? uint32_t(b) : next++;
  return cp;
}

std::string utf8(uint32_t c) {
  std::string s;
  if (c < 0x80) {
    s += char(c);
  } else if (c < 0x800) {
    s += char(0xC0 | (c >> 6));
    s += char(0x80 | (c & 0x3F));
  } else {
    s += char(0xE0 | (c >> 12));
    s += char(0x80 | ((c >> 6) & 0x3F));
    s += char(0x80 | (c & 0x3F));
  }
  return s;
}

/// The code points of UTF-8 `s`; false for bytes that are not UTF-8.
bool codePoints(const std::string &s, std::vector<uint32_t> &out) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
                                                : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + size_t(n) > s.size())
      return false;
    uint32_t v = n == 1 ? c : c & (0xFF >> (n + 1));
    for (int k = 1; k < n; ++k)
      v = v << 6 | (static_cast<unsigned char>(s[i + size_t(k)]) & 0x3F);
    out.push_back(v);
    i += size_t(n);
  }
  return true;
}

/// `bytes` as UTF-8 with every maximal ill-formed subpart replaced by
/// U+FFFD (Unicode's recommended practice, which the tokenizers library's
/// byte-level decoder follows), so that a sample cut inside a character
/// prints as tokenizers decodes it.
std::string lossyUtf8(const std::string &bytes) {
  std::string out;
  size_t i = 0, n = bytes.size();
  auto at = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  while (i < n) {
    unsigned char c = at(i);
    if (c < 0x80) {
      out += char(c);
      ++i;
      continue;
    }
    // Table 3-7: the length and the range of the second byte.
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    size_t k = 1;
    while (len > 0 && int(k) < len && i + k < n) {
      unsigned char d = at(i + k);
      unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
      if (d < l || d > h)
        break;
      ++k;
    }
    if (len > 0 && int(k) == len)
      out.append(bytes, i, k);
    else
      out += "\xEF\xBF\xBD";
    i += k;
  }
  return out;
}

bool isLetter(unsigned char c) { return std::isalpha(c) || c >= 0x80; }

/// GPT-2's pre-tokenizer on ASCII text: 's 't 're 've 'm 'll 'd, then
/// " ?letters", " ?digits", " ?others", whitespace (a run before a word
/// leaves its last space to the word).
std::vector<std::string> splitWords(const std::string &t) {
  std::vector<std::string> words;
  size_t i = 0, n = t.size();
  auto ws = [&](size_t k) { return k < n && std::isspace((unsigned char)t[k]); };
  while (i < n) {
    if (t[i] == '\'') {
      bool matched = false;
      for (const char *c : {"s", "t", "re", "ve", "m", "ll", "d"}) {
        size_t len = std::string(c).size();
        if (t.compare(i + 1, len, c) == 0) {
          words.push_back(t.substr(i, len + 1));
          i += len + 1;
          matched = true;
          break;
        }
      }
      if (matched)
        continue;
    }
    size_t start = i;
    size_t j = i + (t[i] == ' ' && i + 1 < n && !ws(i + 1) ? 1 : 0);
    auto cls = [&](size_t k) {
      unsigned char c = (unsigned char)t[k];
      return isLetter(c) ? 0 : std::isdigit(c) ? 1 : ws(k) ? 3 : 2;
    };
    if (ws(j)) {
      size_t k = j;
      while (ws(k))
        ++k;
      // A run followed by a word gives its last space to the word.
      if (k < n && k - j > 1 && t[k - 1] == ' ')
        --k;
      words.push_back(t.substr(start, k - start));
      i = k;
      continue;
    }
    int c = cls(j);
    size_t k = j + 1;
    while (k < n && cls(k) == c)
      ++k;
    words.push_back(t.substr(start, k - start));
    i = k;
  }
  return words;
}

} // namespace

bool ByteLevelBpe::load(const std::string &path, ByteLevelBpe &out,
                        std::string &error) {
  out = ByteLevelBpe();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot read the file";
    return false;
  }
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("model")) {
    error = path + ": not a tokenizer.json (a JSON object with a model)";
    return false;
  }
  const nlohmann::json &model = j["model"];
  const nlohmann::json decoder = j.value("decoder", nlohmann::json());
  if (model.value("type", "") != "BPE" || !decoder.is_object() ||
      decoder.value("type", "") != "ByteLevel") {
    error = path + ": pipec decodes byte-level BPE tokenizers (GPT-2's, "
                   "pipec-tokenize train's); this one has model " +
            model.value("type", std::string("?")) + " and decoder " +
            (decoder.is_object() ? decoder.value("type", std::string("?"))
                                 : std::string("none"));
    return false;
  }
  std::vector<uint32_t> cp = byteCodePoints();
  std::unordered_map<uint32_t, uint8_t> byteOf;
  for (int b = 0; b < 256; ++b)
    byteOf[cp[size_t(b)]] = uint8_t(b);
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    error = path + ": model.vocab is missing";
    return false;
  }
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
        it->get<int64_t>() >= (int64_t(1) << 31)) {
      error = path + ": model.vocab['" + it.key() + "'] is not an id";
      return false;
    }
    int32_t id = it->get<int32_t>();
    std::vector<uint32_t> points;
    std::string bytes;
    if (!codePoints(it.key(), points)) {
      error = path + ": model.vocab has a piece that is not UTF-8";
      return false;
    }
    for (uint32_t p : points) {
      auto b = byteOf.find(p);
      if (b == byteOf.end()) {
        error = path + ": model.vocab['" + it.key() +
                "'] is not written with the byte-level alphabet";
        return false;
      }
      bytes += char(b->second);
    }
    out.idOf[it.key()] = id;
    out.bytesOf[id] = bytes;
    out.vocabSize = std::max<int64_t>(out.vocabSize, int64_t(id) + 1);
  }
  int32_t rank = 0;
  for (const nlohmann::json &m : model.value("merges", nlohmann::json::array())) {
    std::string a, b;
    if (m.is_string()) { // "a b" (tokenizers before 0.20)
      std::string s = m.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos) {
        error = path + ": model.merges has '" + s + "', not two pieces";
        return false;
      }
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() &&
               m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      error = path + ": model.merges has an entry that is not a pair";
      return false;
    }
    out.mergeRank.emplace(std::make_pair(a, b), rank++);
  }
  for (const nlohmann::json &t : j.value("added_tokens", nlohmann::json::array()))
    if (t.is_object() && t.contains("id") && t["id"].is_number_integer() &&
        t.contains("content") && t["content"].is_string()) {
      int32_t id = t["id"].get<int32_t>();
      out.bytesOf[id] = t["content"].get<std::string>();
      out.vocabSize = std::max<int64_t>(out.vocabSize, int64_t(id) + 1);
    }
  return true;
}

bool ByteLevelBpe::decode(const std::vector<int32_t> &ids, std::string &text,
                          std::string &error) const {
  text.clear();
  for (int32_t id : ids) {
    auto it = bytesOf.find(id);
    if (it == bytesOf.end()) {
      error = "token " + std::to_string(id) + " is not in the tokenizer";
      return false;
    }
    text += it->second;
  }
  text = lossyUtf8(text);
  return true;
}

bool ByteLevelBpe::encode(const std::string &text, std::vector<int32_t> &ids,
                          std::string &error) const {
  ids.clear();
  std::vector<uint32_t> cp = byteCodePoints();
  for (const std::string &word : splitWords(text)) {
    std::vector<std::string> parts;
    for (unsigned char c : word)
      parts.push_back(utf8(cp[c]));
    // Merge the adjacent pair of least rank, again and again.
    for (;;) {
      int32_t best = -1;
      size_t at = 0;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        auto r = mergeRank.find({parts[i], parts[i + 1]});
        if (r != mergeRank.end() && (best < 0 || r->second < best)) {
          best = r->second;
          at = i;
        }
      }
      if (best < 0)
        break;
      parts[at] += parts[at + 1];
      parts.erase(parts.begin() + std::ptrdiff_t(at) + 1);
    }
    for (const std::string &p : parts) {
      auto it = idOf.find(p);
      if (it == idOf.end()) {
        error = "the tokenizer has no id for a piece of the prompt";
        return false;
      }
      ids.push_back(it->second);
    }
  }
  return true;
}

} // namespace pipecrun
