#include "api/http_wire.h"

#include <gtest/gtest.h>

namespace puddle::http {
namespace {

TEST(HttpWireTest, FormatsHeadWithServerOwnedHeaders) {
  Response response = JsonResponse(201, "{}");
  response.SetHeader("location", "/api/v1/systems/a");
  response.SetHeader("content-length", "999");
  response.SetHeader("Connection", "upgrade");
  ResponseFraming framing;
  framing.content_length = 2;

  std::string head = FormatResponseHead(response, framing);

  EXPECT_TRUE(head.starts_with("HTTP/1.1 201 Created\r\n")) << head;
  EXPECT_NE(head.find("\r\ncontent-type: application/json\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nlocation: /api/v1/systems/a\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nContent-Length: 2\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\nServer: puddle\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find("999"), std::string::npos) << head;
  EXPECT_EQ(head.find("upgrade"), std::string::npos) << head;
  EXPECT_EQ(head.find("Connection"), std::string::npos) << "HTTP/1.1 keeps alive by default";
  EXPECT_TRUE(head.ends_with("\r\n\r\n"));
}

TEST(HttpWireTest, StatesConnectionWhenItDiffersFromDefault) {
  Response response;
  ResponseFraming closing;
  closing.keep_alive = false;
  ResponseFraming old_keep_alive;
  old_keep_alive.version = 10;

  EXPECT_NE(FormatResponseHead(response, closing).find("\r\nConnection: close\r\n"),
            std::string::npos);
  std::string old = FormatResponseHead(response, old_keep_alive);
  EXPECT_TRUE(old.starts_with("HTTP/1.0 200 OK\r\n"));
  EXPECT_NE(old.find("\r\nConnection: keep-alive\r\n"), std::string::npos);
}

TEST(HttpWireTest, ChunkedHeadHasNoLength) {
  Response response;
  ResponseFraming framing;
  framing.chunked = true;

  std::string head = FormatResponseHead(response, framing);

  EXPECT_NE(head.find("\r\nTransfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(head.find("Content-Length"), std::string::npos);
}

TEST(HttpWireTest, UnknownStatusGetsEmptyReason) {
  Response response;
  response.status = 299;

  EXPECT_TRUE(FormatResponseHead(response, {}).starts_with("HTTP/1.1 299 \r\n"));
}

TEST(HttpWireTest, CheckResponseRejectsUnsafeHeaders) {
  Response injected;
  injected.SetHeader("location", "/a\r\nset-cookie: x=1");
  Response bad_name;
  bad_name.headers.emplace_back("bad name", "v");
  Response informational;
  informational.status = 101;
  Response fine;
  fine.SetHeader("x-tab", "a\tb");

  EXPECT_FALSE(CheckResponse(injected));
  EXPECT_FALSE(CheckResponse(bad_name));
  EXPECT_FALSE(CheckResponse(informational));
  EXPECT_TRUE(CheckResponse(fine));
}

TEST(HttpWireTest, FormatsImfFixdate) {
  EXPECT_EQ(FormatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(HttpWireTest, BodyAllowedByStatus) {
  EXPECT_TRUE(StatusAllowsBody(200));
  EXPECT_FALSE(StatusAllowsBody(204));
  EXPECT_FALSE(StatusAllowsBody(304));
  EXPECT_TRUE(StatusAllowsBody(404));
}

}  // namespace
}  // namespace puddle::http
