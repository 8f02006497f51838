#include "cli/client/format.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace hearth::cli {

std::string human_bytes(int64_t n) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = double(n);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char b[32];
  if (u == 0)
    std::snprintf(b, sizeof b, "%lld B", (long long)n);
  else if (v < 10)
    std::snprintf(b, sizeof b, "%.1f %s", v, units[u]);
  else
    std::snprintf(b, sizeof b, "%.0f %s", v, units[u]);
  return b;
}

std::string human_since(int64_t t, int64_t now) {
  const bool future = t > now;
  int64_t d = future ? t - now : now - t;
  const char* suffix = future ? " from now" : " ago";
  if (d < 1) return future ? "Less than a second from now" : "Less than a second ago";
  auto unit = [&](int64_t n, const char* one, const char* many) {
    char b[64];
    if (n == 1)
      std::snprintf(b, sizeof b, "%s%s", one, suffix);
    else
      std::snprintf(b, sizeof b, "%lld %s%s", (long long)n, many, suffix);
    return std::string(b);
  };
  if (d < 60) return unit(d, "1 second", "seconds");
  if (d < 3600) return d < 120 ? unit(1, "About a minute", "") : unit(d / 60, "", "minutes");
  if (d < 86400) return d < 7200 ? unit(1, "About an hour", "") : unit(d / 3600, "", "hours");
  if (d < 86400 * 30) return unit(d / 86400, "1 day", "days");
  if (d < 86400 * 365) return unit(d / (86400 * 30), "1 month", "months");
  if (d > int64_t(86400) * 365 * 50) return "Forever";
  return unit(d / (86400 * 365), "1 year", "years");
}

int64_t parse_rfc3339(const std::string& s) {
  struct tm tm {};
  int y, mo, d, h, mi, sec;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec) != 6) return 0;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  int64_t t = int64_t(timegm(&tm));
  // A numeric offset after the seconds (and optional fraction): local time = UTC + offset.
  size_t p = s.find_first_of("+-Z", 19);
  if (p != std::string::npos && s[p] != 'Z' && p + 5 < s.size() + 1) {
    int oh = 0, om = 0;
    if (std::sscanf(s.c_str() + p + 1, "%d:%d", &oh, &om) >= 1) {
      const int64_t off = oh * 3600 + om * 60;
      t += s[p] == '+' ? -off : off;
    }
  }
  return t;
}

std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  auto width = [](const std::string& s) {  // display width: count UTF-8 lead bytes
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i) w.resize(i + 1, 0);
      w[i] = std::max(w[i], width(r[i]));
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(w[i] - width(r[i]) + 4, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string progress_bar(const std::string& label, int64_t done, int64_t total, int width) {
  const double f = total > 0 ? std::clamp(double(done) / double(total), 0.0, 1.0) : 0.0;
  const int fill = int(f * width + 0.5);
  std::string bar;
  for (int i = 0; i < width; ++i) bar += i < fill ? "\u2588" : " ";
  char pct[8];
  std::snprintf(pct, sizeof pct, "%3d%%", int(f * 100));
  return label + " " + pct + " \u2595" + bar + "\u258f " + human_bytes(done) + "/" +
         human_bytes(total);
}

std::string WordWrapper::feed(const std::string& text) {
  if (width_ <= 0) return text;
  std::string out;
  for (char c : text) {
    if (c == '\n') {
      out += word_ + "\n";
      word_.clear();
      word_cols_ = 0;
      col_ = 0;
    } else if (c == ' ') {
      if (col_ > 0 && col_ + word_cols_ > width_) {  // the word goes on the next line
        out += "\n";
        col_ = 0;
      }
      out += word_;
      col_ += word_cols_;
      word_.clear();
      word_cols_ = 0;
      if (col_ < width_) {
        out += ' ';
        ++col_;
      }
    } else {
      word_ += c;
      if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++word_cols_;  // a character starts
    }
  }
  return out;
}

std::string WordWrapper::flush() {
  std::string out;
  if (width_ > 0 && col_ > 0 && col_ + word_cols_ > width_) out += "\n";
  out += word_;
  word_.clear();
  word_cols_ = 0;
  col_ = 0;
  return out;
}

}  // namespace hearth::cli
