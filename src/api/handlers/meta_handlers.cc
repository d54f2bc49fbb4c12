// Routes outside the resource API: health, metrics, the OpenAPI document and sign-in pages.
#include <memory>

#include "api/handler_support.h"
#include "api/handlers/routes.h"
#include "api/openapi.h"
#include "common/json.h"
#include "common/log.h"
#include "config/system_origins.h"

namespace puddle::api {
namespace {

std::string HtmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string PercentDecode(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(text[i + 1]) &&
               std::isxdigit(text[i + 2])) {
      out.push_back(static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::map<std::string, std::string> ParseForm(const std::string& body) {
  std::map<std::string, std::string> fields;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t end = body.find('&', pos);
    if (end == std::string::npos) end = body.size();
    std::string pair = body.substr(pos, end - pos);
    size_t equals = pair.find('=');
    if (equals != std::string::npos) {
      fields[PercentDecode(pair.substr(0, equals))] = PercentDecode(pair.substr(equals + 1));
    }
    pos = end + 1;
  }
  return fields;
}

http::Response LoginPage(const std::string& next, const std::string& message, int status) {
  http::Response response;
  response.status = status;
  response.SetHeader("content-type", "text/html; charset=utf-8");
  response.SetHeader("content-security-policy",
                     "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                     "frame-ancestors 'none'");
  response.body =
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in to "
      "Puddle</title><style>body{font-family:sans-serif;max-width:22rem;margin:4rem auto}"
      "label,input,button{display:block;width:100%;margin:.4rem 0}</style></head><body>"
      "<h1>Puddle</h1>" +
      (message.empty() ? std::string() : "<p role=\"alert\">" + HtmlEscape(message) + "</p>") +
      "<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"next\" value=\"" +
      HtmlEscape(next) +
      "\"><label>Username<input name=\"username\" autocomplete=\"username\" required></label>"
      "<label>Password<input name=\"password\" type=\"password\" "
      "autocomplete=\"current-password\" required></label><button>Sign in</button></form>"
      "</body></html>";
  return response;
}

}  // namespace

void AddMetaRoutes(Router& router, ApiDependencies& deps) {
  auto origins = std::make_shared<const SystemOrigins>(deps.config);
  router.Add({"GET", "/healthz", Access::kPublic,
              [&deps](RequestContext&) -> Result<http::Response> {
                auto alive = deps.store.Read([](Tx& tx) { return tx.GetSetting("installation_id").map([](auto&&) {}); });
                if (!alive) return MakeError(ErrorCode::kUnavailable, "the database did not respond; check the data directory and the logs");
                return JsonReply(200, boost::json::object{{"status", "ok"}});
              },
              {"Liveness: answers when the server and its database work", "meta", 200, "", "Health"}});

  router.Add({"GET", "/metrics", Access::kPublic,
              [&deps](RequestContext&) -> Result<http::Response> {
                http::Response response;
                response.SetHeader("content-type", "text/plain; version=0.0.4; charset=utf-8");
                response.body = deps.metrics.RenderText();
                return response;
              },
              {"Prometheus metrics", "meta", 200}});

  router.Add({"GET", "/api/v1/openapi.json", Access::kPublic,
              [&router](RequestContext&) -> Result<http::Response> {
                return JsonReply(200, BuildOpenApi(router));
              },
              {"This document", "meta", 200}});

  router.Add({"GET", "/login", Access::kPublic,
              [origins](RequestContext& context) -> Result<http::Response> {
                return LoginPage(origins->SignInNext(QueryValue(context, "next").value_or("")), "", 200);
              },
              {"The sign-in page", "meta", 200, "", "", {"next"}}});

  router.Add({"POST", "/login", Access::kPublic,
              [&deps, origins](RequestContext& context) -> Result<http::Response> {
                auto form = ParseForm(context.request.body);
                std::string next = origins->SignInNext(form["next"]);
                auto grant = deps.auth.Login(form["username"], form["password"],
                                             context.request.peer_address);
                if (!grant) {
                  int status = grant.error().code == ErrorCode::kRateLimited ? 429 : 401;
                  return LoginPage(next, grant.error().message, status);
                }
                http::Response response;
                response.status = 303;
                response.SetHeader("location", next);
                response.headers.emplace_back(
                    "set-cookie", std::string(kSessionCookie) + "=" + grant->session +
                                      "; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=604800");
                return response;
              },
              {"Sign in from the HTML form", "meta", 303}});

  router.Add({"GET", "/", Access::kPublic,
              [](RequestContext& context) -> Result<http::Response> {
                http::Response response;
                if (!context.actor) {
                  response.status = 302;
                  response.SetHeader("location", "/login");
                  return response;
                }
                response.SetHeader("content-type", "text/html; charset=utf-8");
                response.body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                                "<title>Puddle</title></head><body><p>Signed in as " +
                                HtmlEscape(context.actor->username) +
                                ". The web UI is not built yet; use the API or the puddle CLI."
                                "</p></body></html>";
                return response;
              },
              {"Home page", "meta", 200}});
}

}  // namespace puddle::api
