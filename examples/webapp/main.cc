// session_webapp: the example shop (app.h) over HTTP. Flags -> ClientOptions -> SessionClient ->
// WebApp -> httplib::Server; serves until SIGTERM or SIGINT.
//
//   session_webapp --port=8080 --servers=127.0.0.1:7500,127.0.0.1:7501
//                  --cookie_key_file=/tmp/webapp.keys --insecure_cookies
// Two data centres (docs/TWO_SITES.md): also --dc=NAME and the other site's servers,
// --remote_servers=host:port,... and/or --remote_registry=host:port.
#include <gflags/gflags.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "examples/webapp/app.h"
#include "session_client/client.h"
#include "util/host_port.h"
#include "util/port_file.h"
#include "util/shutdown_signals.h"

DEFINE_string(host, "127.0.0.1",
              "Address to listen on. Loopback by default: put a TLS-terminating proxy in front "
              "before exposing the app.");
DEFINE_int32(port, 8080, "HTTP port; 0 picks a free one (see --port_file).");
DEFINE_string(port_file, "", "If set, the bound port is written to this file once listening.");
DEFINE_string(servers, "127.0.0.1:7500,127.0.0.1:7501",
              "The session server fleet, host:port,host:port (the client's membership view; "
              "every instance of the app must list the same servers).");
DEFINE_string(registry, "",
              "host:port of the fleet's registry (its Redis), or empty: the app then discovers "
              "servers as they are added and keeps new sessions off draining ones; --servers "
              "is the starting view");
DEFINE_string(dc, "", "This app's data centre (informational; two sites: docs/TWO_SITES.md).");
DEFINE_string(remote_servers, "",
              "Two data centres: the other site's session servers, host:port,host:port, or "
              "empty. Cookies naming them are followed (one cross-site call), and they serve "
              "this app's sessions when no server of --servers answers.");
DEFINE_string(remote_registry, "",
              "Two data centres: host:port of the other site's registry (its Redis), or empty: "
              "the other site's servers are then discovered like --registry's");
DEFINE_string(cookie_key_file, "",
              "Required. The cookie key set (CookieKeySet text form); created, mode 0600, if "
              "missing. Every instance of the app must read the same keys.");
DEFINE_bool(insecure_cookies, false,
            "Send the session cookie without the Secure attribute, for plain-HTTP local runs. "
            "Browsers then send it over HTTP, where anyone on the path can read it.");
DEFINE_int32(session_timeout_minutes, 20, "Idle minutes after which a session expires.");

namespace sessionserver::webapp {
namespace {

Status OptionsFromFlags(client::ClientOptions* options) {
  if (FLAGS_cookie_key_file.empty())
    return Status::InvalidArgument("--cookie_key_file is required");
  if (FLAGS_port < 0 || FLAGS_port > 65535) return Status::InvalidArgument("--port out of range");
  Status s = ParseHostPortList(FLAGS_servers, &options->servers);
  if (!s.ok()) return Status::InvalidArgument("--servers: " + s.message());
  options->registry = FLAGS_registry;
  options->dc = FLAGS_dc;
  if (!FLAGS_remote_servers.empty()) {
    s = ParseHostPortList(FLAGS_remote_servers, &options->remote_servers);
    if (!s.ok()) return Status::InvalidArgument("--remote_servers: " + s.message());
  }
  options->remote_registry = FLAGS_remote_registry;
  s = LoadOrCreateKeyFile(FLAGS_cookie_key_file, &options->keys);
  if (!s.ok()) return s;
  options->cookie_secure = !FLAGS_insecure_cookies;
  options->session_timeout_minutes = FLAGS_session_timeout_minutes;
  return Status::OK();
}

int Run() {
  client::ClientOptions options;
  Status s = OptionsFromFlags(&options);
  if (!s.ok()) {
    std::fprintf(stderr, "session_webapp: %s\n", s.ToString().c_str());
    return 2;
  }
  std::unique_ptr<client::SessionClient> session_client =
      client::SessionClient::Create(std::move(options), &s);
  if (session_client == nullptr || !s.ok()) {
    std::fprintf(stderr, "session_webapp: %s\n", s.ToString().c_str());
    return 2;
  }

  // Only the signal thread below receives SIGTERM/SIGINT (the server's threads inherit the mask).
  const sigset_t signals = BlockShutdownSignals();

  WebApp app(session_client.get());
  httplib::Server server;
  app.Install(&server);
  server.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    std::fprintf(stderr, "%s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
  });
  int port = FLAGS_port;
  if (port == 0) {
    port = server.bind_to_any_port(FLAGS_host);
  } else if (!server.bind_to_port(FLAGS_host, port)) {
    port = -1;
  }
  if (port <= 0) {
    std::fprintf(stderr, "session_webapp: cannot listen on %s:%d\n", FLAGS_host.c_str(),
                 FLAGS_port);
    return 1;
  }
  if (!FLAGS_port_file.empty() && !WritePortFile(FLAGS_port_file, port)) {
    std::fprintf(stderr, "session_webapp: cannot write --port_file %s\n", FLAGS_port_file.c_str());
    return 1;
  }
  std::string servers = FLAGS_servers;
  if (!FLAGS_dc.empty()) servers += " (dc " + FLAGS_dc + ")";
  if (!FLAGS_remote_servers.empty()) servers += ", other site " + FLAGS_remote_servers;
  std::fprintf(stderr, "session_webapp listening on http://%s:%d/, session servers %s\n",
               FLAGS_host.c_str(), port, servers.c_str());

  std::atomic<bool> listen_returned{false};
  std::thread stopper([&] {
    const int sig = WaitForShutdownSignal(signals);
    // stop() does nothing before the accept loop runs: a signal during start-up waits for it.
    while (!server.is_running() && !listen_returned) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!listen_returned) std::fprintf(stderr, "session_webapp: signal %d: shutting down\n", sig);
    server.stop();
  });
  const bool ok = server.listen_after_bind();
  listen_returned = true;
  kill(getpid(), SIGTERM);  // wakes the stopper if the server ended by itself
  stopper.join();
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace sessionserver::webapp

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "session_webapp --port=N --servers=host:port,... --cookie_key_file=PATH "
      "[--insecure_cookies] [--host=127.0.0.1] [--registry=host:port] "
      "[--dc=NAME --remote_servers=host:port,... --remote_registry=host:port]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return sessionserver::webapp::Run();
}
