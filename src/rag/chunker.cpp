#include "rag/chunker.h"

#include <algorithm>

namespace hearth::rag {
namespace {

// A contiguous span of the document the packer treats as indivisible.
struct Unit {
  size_t begin, end;  // bytes, the unit's own text (no trailing blank lines)
  size_t tokens;
  int section;    // index into the heading paths
  bool heading;   // a heading line: a chunk may start a new section here
  int code = -1;  // the fenced block it belongs to (index into fences), or -1
  bool fence_open = false, fence_close = false;  // the unit holds the block's fence line(s)
};

size_t line_end(std::string_view t, size_t i) {
  const size_t e = t.find('\n', i);
  return e == std::string_view::npos ? t.size() : e;
}

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t") == std::string_view::npos;
}

// `#`..`######` then a space or the end of the line (ATX headings); 0 if not one.
int heading_level(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && i < 3 && line[i] == ' ') ++i;
  int n = 0;
  while (i < line.size() && line[i] == '#') ++i, ++n;
  if (n < 1 || n > 6) return 0;
  return i == line.size() || line[i] == ' ' || line[i] == '\t' ? n : 0;
}

// A code fence: 3+ backticks or tildes after at most 3 spaces. Returns its char and length.
bool fence(std::string_view line, char& ch, size_t& len) {
  size_t i = 0;
  while (i < line.size() && i < 3 && line[i] == ' ') ++i;
  if (i >= line.size() || (line[i] != '`' && line[i] != '~')) return false;
  ch = line[i];
  size_t n = 0;
  while (i + n < line.size() && line[i + n] == ch) ++n;
  if (n < 3) return false;
  len = n;
  return true;
}

// Splits [b, e) into pieces of at most `max` tokens at the latest break that fits: line ends
// for code, else sentence ends, else spaces, else anywhere (on a UTF-8 boundary).
void split_span(std::string_view t, size_t b, size_t e, bool code, size_t max,
                const std::function<size_t(std::string_view)>& count, std::vector<Unit>& out,
                const Unit& proto) {
  auto is_break = [&](size_t i, int level) {  // a piece may end right after t[i]
    const char c = t[i];
    if (c == '\n') return true;
    if (level >= 1 && code) return false;
    if (level >= 1 && (c == '.' || c == '?' || c == '!' || c == ';') && i + 1 < e &&
        (t[i + 1] == ' ' || t[i + 1] == '\n'))
      return true;
    if (level >= 2 && (c == ' ' || c == '\t')) return true;
    return level >= 3 && (i + 1 >= e || (static_cast<unsigned char>(t[i + 1]) & 0xC0) != 0x80);
  };
  size_t start = b;
  while (start < e) {
    while (start < e && (t[start] == ' ' || t[start] == '\n')) ++start;
    if (start >= e) break;
    size_t cut = e;
    if (count(t.substr(start, e - start)) > max) {
      // Grow the piece break by break at the finest level that yields one that fits.
      cut = 0;
      for (int level = 0; level <= 3 && cut == 0; ++level) {
        size_t last_fit = 0;
        for (size_t i = start; i < e; ++i) {
          if (!is_break(i, level)) continue;
          if (count(t.substr(start, i + 1 - start)) > max) break;
          last_fit = i + 1;
        }
        cut = last_fit;
      }
      if (cut == 0) cut = std::min(e, start + 1);  // one unsplittable character
    }
    size_t stop = cut;
    while (stop > start && (t[stop - 1] == ' ' || t[stop - 1] == '\n')) --stop;
    Unit u = proto;
    u.begin = start;
    u.end = stop;
    u.tokens = count(t.substr(start, stop - start));
    u.heading = false;
    u.fence_open = u.fence_close = false;
    out.push_back(u);
    start = cut;
  }
}

}  // namespace

std::vector<Chunk> chunk_document(std::string_view t, const ChunkOptions& o) {
  const auto count = o.count ? o.count : [](std::string_view s) { return (s.size() + 3) / 4; };
  const size_t max = std::max<size_t>(o.max_tokens, 16);
  const size_t overlap = std::min(o.overlap_tokens, max / 2);

  // Sections: the heading path in force after each heading.
  std::vector<std::string> paths{""};
  std::vector<std::pair<int, std::string>> stack;  // (level, heading line)
  std::vector<std::string> fence_lines;            // the opening line of each fenced block
  std::vector<std::string> fence_closes;

  // 1. Blocks (headings, paragraphs, fenced code), oversize ones split into units.
  std::vector<Unit> units;
  size_t i = 0;
  const size_t body_max = max * 3 / 4;  // room for the heading path and fences
  while (i < t.size()) {
    const size_t le = line_end(t, i);
    const std::string_view line = t.substr(i, le - i);
    if (blank(line)) {
      i = le + 1;
      continue;
    }
    char fc;
    size_t fl;
    if (const int level = heading_level(line)) {
      while (!stack.empty() && stack.back().first >= level) stack.pop_back();
      std::string h(line.substr(line.find('#')));
      while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.pop_back();
      stack.push_back({level, h});
      std::string p;
      for (const auto& [l, s] : stack) p += (p.empty() ? "" : " > ") + s;
      paths.push_back(p);
      units.push_back({i, le, count(line), int(paths.size()) - 1, true});
      i = le + 1;
      continue;
    }
    Unit proto{0, 0, 0, int(paths.size()) - 1, false};
    if (fence(line, fc, fl)) {
      // Up to the closing fence (same char, at least as long) or the end of the text.
      size_t j = le + 1, close_b = t.size(), close_e = t.size();
      while (j < t.size()) {
        const size_t je = line_end(t, j);
        char c2;
        size_t l2;
        if (fence(t.substr(j, je - j), c2, l2) && c2 == fc && l2 >= fl &&
            blank(t.substr(j, je - j).substr(t.substr(j, je - j).find(c2) + l2))) {
          close_b = j;
          close_e = je;
          break;
        }
        j = je + 1;
      }
      const int id = int(fence_lines.size());
      fence_lines.emplace_back(line);
      fence_closes.emplace_back(std::string(fl, fc));
      proto.code = id;
      const size_t whole_end = close_e;
      if (count(t.substr(i, whole_end - i)) <= body_max) {
        Unit u = proto;
        u.begin = i;
        u.end = whole_end;
        u.tokens = count(t.substr(i, whole_end - i));
        u.fence_open = true;
        u.fence_close = close_b < t.size();
        units.push_back(u);
      } else {  // the inside, in line-aligned pieces; the fences are added back per chunk
        const size_t in_b = std::min(le + 1, t.size());
        const size_t first = units.size();
        split_span(t, in_b, std::max(in_b, close_b), true, body_max, count, units, proto);
        if (units.size() > first) {
          units[first].fence_open = false;
        }
      }
      i = close_e + 1;
      continue;
    }
    // A paragraph: up to a blank line, a heading or a fence.
    size_t j = le + 1, end = le;
    while (j < t.size()) {
      const size_t je = line_end(t, j);
      const std::string_view l2 = t.substr(j, je - j);
      char c2;
      size_t n2;
      if (blank(l2) || heading_level(l2) || fence(l2, c2, n2)) break;
      end = je;
      j = je + 1;
    }
    if (count(t.substr(i, end - i)) <= body_max) {
      Unit u = proto;
      u.begin = i;
      u.end = end;
      u.tokens = count(t.substr(i, end - i));
      units.push_back(u);
    } else {
      split_span(t, i, end, false, body_max, count, units, proto);
    }
    i = end + 1;
  }

  // 2. Units packed into chunks. A heading starts a new chunk unless the current one is still
  // small (a run of short sections shares one); the next chunk begins with the previous one's
  // last units up to `overlap` tokens, within the same section.
  std::vector<Chunk> out;
  // The heading path a chunk starts with, cut to its deepest headings if it would take more than
  // a quarter of the budget.
  auto path_of = [&](int section) {
    std::string p = paths[size_t(section)];
    while (!p.empty() && count(p) > max / 4) {
      const size_t gt = p.find(" > ");
      p = gt == std::string::npos ? std::string() : p.substr(gt + 3);
    }
    return p;
  };
  size_t u = 0;
  while (u < units.size()) {
    const size_t first = u;
    const std::string path = units[first].heading ? std::string() : path_of(units[first].section);
    const size_t budget = max - std::min(max - 1, path.empty() ? 0 : count(path) + 1);
    // Fences put back around cut code take room too: reserved once the chunk holds code.
    auto fence_cost = [&](const Unit& x) {
      return x.code < 0
                 ? size_t(0)
                 : count(fence_lines[size_t(x.code)]) + count(fence_closes[size_t(x.code)]) + 2;
    };
    size_t tokens = 0, reserve = 0, last = u;  // last: exclusive
    while (last < units.size()) {
      const Unit& x = units[last];
      const size_t r = std::max(reserve, fence_cost(x));
      if (last > first && x.heading && tokens >= max / 4) break;
      if (last > first && tokens + x.tokens + r > budget) break;
      tokens += x.tokens;
      reserve = r;
      ++last;
    }
    // Overlap: units before `first` of the same section, newest first, while they fit.
    size_t ov = first;
    if (!out.empty() && !units[first].heading) {
      size_t ov_tokens = 0;
      while (ov > 0 && units[ov - 1].section == units[first].section && !units[ov - 1].heading &&
             units[ov - 1].code == units[first].code &&
             ov_tokens + units[ov - 1].tokens <= overlap &&
             tokens + ov_tokens + units[ov - 1].tokens + reserve <= budget) {
        ov_tokens += units[ov - 1].tokens;
        --ov;
      }
    }
    Chunk c;
    c.begin = units[first].begin;
    c.end = units[last - 1].end;
    const Unit& head = units[ov];
    c.headings = paths[size_t(units[first].section)];
    std::string body(t.substr(head.begin, c.end - head.begin));
    // Code cut out of its block gets its fences back, so the passage shows (and embeds) as code.
    if (head.code >= 0 && !head.fence_open) body = fence_lines[size_t(head.code)] + "\n" + body;
    const Unit& tail = units[last - 1];
    if (tail.code >= 0 && !tail.fence_close) body += "\n" + fence_closes[size_t(tail.code)];
    c.text = path.empty() ? body : path + "\n\n" + body;
    c.tokens = count(c.text);
    out.push_back(std::move(c));
    u = last;
  }
  return out;
}

}  // namespace hearth::rag
