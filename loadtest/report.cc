// The JSON and HTML reports of a replay (contract in replay.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "loadtest/replay.h"
#include "util/text.h"

namespace sessionserver::loadtest {
namespace {

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

// An SVG line chart of `series` (each a name, a colour and y values per x), 640x240.
std::string Chart(const std::string& title, const std::string& y_label,
                  const std::vector<std::pair<std::string, std::vector<double>>>& series,
                  const std::vector<double>& xs, bool log_x = false) {
  const double w = 640, h = 240, left = 60, bottom = 30, top = 20, right = 20;
  double x_max = 1, y_max = 1, x_min = log_x ? 1 : 0;
  for (double x : xs) x_max = std::max(x_max, x);
  for (const auto& s : series) {
    for (double y : s.second) y_max = std::max(y_max, y);
  }
  auto px = [&](double x) {
    if (log_x) {
      const double lx = std::log10(std::max(1.0, x)), lmax = std::log10(x_max);
      return left + (lmax > 0 ? lx / lmax : 0) * (w - left - right);
    }
    return left + (x - x_min) / (x_max - x_min) * (w - left - right);
  };
  auto py = [&](double y) { return h - bottom - y / y_max * (h - top - bottom); };
  const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
  std::string svg = "<h3>" + HtmlEscape(title) + "</h3><svg width=\"640\" height=\"240\" " +
                    "xmlns=\"http://www.w3.org/2000/svg\" style=\"background:#fafafa\">";
  svg += "<line x1=\"60\" y1=\"210\" x2=\"620\" y2=\"210\" stroke=\"#333\"/>";
  svg += "<line x1=\"60\" y1=\"20\" x2=\"60\" y2=\"210\" stroke=\"#333\"/>";
  svg += "<text x=\"4\" y=\"16\" font-size=\"11\">" + HtmlEscape(y_label) + " (max " + Num(y_max) +
         ")</text>";
  svg += "<text x=\"560\" y=\"235\" font-size=\"11\">" + Num(x_max) + "</text>";
  for (size_t i = 0; i < series.size(); ++i) {
    std::string points;
    for (size_t j = 0; j < series[i].second.size() && j < xs.size(); ++j) {
      points += Num(px(xs[j])) + "," + Num(py(series[i].second[j])) + " ";
    }
    svg += "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"" + std::string(colours[i % 4]) +
           "\" points=\"" + points + "\"/>";
    svg += "<text x=\"" + Num(70 + 120.0 * static_cast<double>(i)) +
           "\" y=\"35\" font-size=\"11\" fill=\"" + colours[i % 4] + "\">" +
           HtmlEscape(series[i].first) + "</text>";
  }
  return svg + "</svg>";
}

}  // namespace

std::string JsonReport(const ReplayResults& r) {
  const LatencyHistogram& h = r.latency;
  std::string j = "{\n";
  j += "  \"target\": " + JsonString(r.target) + ",\n";
  j += "  \"mode\": \"" + std::string(r.open_loop ? "open-loop" : "closed-loop") + "\",\n";
  j += "  \"ops\": " + std::to_string(r.ops) + ",\n";
  j += "  \"ok\": " + std::to_string(r.ok) + ",\n";
  j += "  \"seconds\": " + Num(r.seconds) + ",\n";
  j += "  \"throughput_ops_s\": " + Num(r.throughput()) + ",\n";
  j += "  \"latency_us\": {\"p50\": " + std::to_string(h.Percentile(0.5)) +
       ", \"p90\": " + std::to_string(h.Percentile(0.9)) +
       ", \"p99\": " + std::to_string(h.Percentile(0.99)) +
       ", \"p999\": " + std::to_string(h.Percentile(0.999)) +
       ", \"p9999\": " + std::to_string(h.Percentile(0.9999)) +
       ", \"max\": " + std::to_string(h.max()) + ", \"mean\": " + Num(h.mean()) + "},\n";
  j += "  \"errors\": " + std::to_string(r.errors) + ",\n";
  j += "  \"errors_by_kind\": {";
  bool first = true;
  for (const auto& [kind, n] : r.errors_by_kind) {
    j += std::string(first ? "" : ", ") + JsonString(kind) + ": " + std::to_string(n);
    first = false;
  }
  j += "},\n";
  j += "  \"skipped\": " + std::to_string(r.skipped) + ",\n";
  j += "  \"lost_updates\": " + std::to_string(r.checks.lost_updates) + ",\n";
  j += "  \"stale_reads\": " + std::to_string(r.checks.stale_reads) + ",\n";
  j += "  \"resurrected\": " + std::to_string(r.checks.resurrected) + ",\n";
  j += "  \"examples\": [";
  for (size_t i = 0; i < r.checks.examples.size(); ++i) {
    j += std::string(i ? ", " : "") + JsonString(r.checks.examples[i]);
  }
  j += "],\n  \"per_second\": [";
  for (size_t i = 0; i < r.per_second.size(); ++i) {
    const SecondStats& s = r.per_second[i];
    j += std::string(i ? ",\n    " : "\n    ") + "{\"second\": " + std::to_string(i) +
         ", \"ops\": " + std::to_string(s.ops) + ", \"errors\": " + std::to_string(s.errors) +
         ", \"p50_us\": " + std::to_string(s.p50_us) + ", \"p99_us\": " + std::to_string(s.p99_us) +
         ", \"max_us\": " + std::to_string(s.max_us) + "}";
  }
  j += "]\n}\n";
  return j;
}

std::string HtmlReport(const ReplayResults& r) {
  std::vector<double> xs, ops, p50, p99;
  for (size_t i = 0; i < r.per_second.size(); ++i) {
    xs.push_back(static_cast<double>(i));
    ops.push_back(static_cast<double>(r.per_second[i].ops));
    p50.push_back(static_cast<double>(r.per_second[i].p50_us) / 1000);
    p99.push_back(static_cast<double>(r.per_second[i].p99_us) / 1000);
  }
  std::vector<double> lat_x, cdf;
  uint64_t seen = 0;
  for (const auto& [upper, count] : r.latency.Buckets()) {
    seen += count;
    lat_x.push_back(static_cast<double>(upper));
    cdf.push_back(100.0 * static_cast<double>(seen) / static_cast<double>(r.latency.count()));
  }
  const LatencyHistogram& h = r.latency;
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>session_loadtest report</title>"
      "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:right}"
      "</style></head><body><h1>session_loadtest</h1>";
  html += "<p>Target <code>" + HtmlEscape(r.target) + "</code>, " +
          (r.open_loop ? "open loop" : "closed loop") + ", " + Num(r.seconds) + " s.</p>";
  html +=
      "<table><tr><th>ops</th><th>ops/s</th><th>p50 µs</th><th>p99 µs</th><th>p99.9 µs</th>"
      "<th>p99.99 µs</th><th>max µs</th><th>errors</th><th>lost updates</th>"
      "<th>stale reads</th><th>resurrected</th></tr><tr><td>" +
      std::to_string(r.ops) + "</td><td>" + Num(r.throughput()) + "</td><td>" +
      std::to_string(h.Percentile(0.5)) + "</td><td>" + std::to_string(h.Percentile(0.99)) +
      "</td><td>" + std::to_string(h.Percentile(0.999)) + "</td><td>" +
      std::to_string(h.Percentile(0.9999)) + "</td><td>" + std::to_string(h.max()) + "</td><td>" +
      std::to_string(r.errors) + "</td><td>" + std::to_string(r.checks.lost_updates) + "</td><td>" +
      std::to_string(r.checks.stale_reads) + "</td><td>" + std::to_string(r.checks.resurrected) +
      "</td></tr></table>";
  html += Chart("Throughput over time", "requests/s", {{"ops/s", ops}}, xs);
  html += Chart("Latency percentiles over time (by intended start)", "ms",
                {{"p50", p50}, {"p99", p99}}, xs);
  html += Chart("Latency distribution (cumulative, log scale)", "% of requests", {{"CDF", cdf}},
                lat_x, /*log_x=*/true);
  if (!r.errors_by_kind.empty() || r.skipped > 0) {
    html += "<h3>Errors by kind</h3><ul>";
    for (const auto& [kind, n] : r.errors_by_kind) {
      html += "<li>" + HtmlEscape(kind) + ": " + std::to_string(n) + "</li>";
    }
    html += "<li>never issued (run time limit): " + std::to_string(r.skipped) + "</li></ul>";
  }
  if (!r.checks.examples.empty()) {
    html += "<h3>First anomalies</h3><ul>";
    for (const auto& e : r.checks.examples) html += "<li>" + HtmlEscape(e) + "</li>";
    html += "</ul>";
  }
  return html + "</body></html>\n";
}

}  // namespace sessionserver::loadtest
