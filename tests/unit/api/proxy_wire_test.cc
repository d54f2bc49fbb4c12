// The socket-free parts of the access proxy's forwarding: header rules and
// the WebSocket frame reader.
#include "api/proxy_wire.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace puddle::http {
namespace {

// Builds a client-to-server frame (RFC 6455 section 5.2) with `mask`.
std::string MaskedFrame(bool fin, uint8_t opcode, std::string_view payload,
                        std::string_view mask = "\x11\x22\x33\x44") {
  std::string frame;
  frame += static_cast<char>((fin ? 0x80 : 0x00) | opcode);
  if (payload.size() < 126) {
    frame += static_cast<char>(0x80 | payload.size());
  } else if (payload.size() <= 0xffff) {
    frame += static_cast<char>(0x80 | 126);
    frame += static_cast<char>(payload.size() >> 8);
    frame += static_cast<char>(payload.size() & 0xff);
  } else {
    frame += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8) {
      frame += static_cast<char>((static_cast<uint64_t>(payload.size()) >> shift) & 0xff);
    }
  }
  frame += mask;
  for (size_t i = 0; i < payload.size(); ++i) frame += static_cast<char>(payload[i] ^ mask[i % 4]);
  return frame;
}

class MessageCollector {
 public:
  WebSocketMessageReader Reader(size_t max_bytes = 64 << 10) {
    return WebSocketMessageReader([this](std::string_view m) { messages.emplace_back(m); },
                                  max_bytes);
  }
  std::vector<std::string> messages;
};

TEST(ProxyWireTest, HopByHopHeadersAreDropped) {
  HeaderList headers = {{"Host", "product"},
                        {"Connection", "keep-alive, X-Private"},
                        {"x-private", "secret"},
                        {"Keep-Alive", "timeout=5"},
                        {"proxy-connection", "keep-alive"},
                        {"proxy-authorization", "Basic abc"},
                        {"te", "trailers"},
                        {"trailer", "x-sum"},
                        {"transfer-encoding", "chunked"},
                        {"upgrade", "h2c"},
                        {"x-kept", "1"}};

  HeaderList kept = WithoutHopByHopHeaders(headers);

  HeaderList expected = {{"Host", "product"}, {"x-kept", "1"}};
  EXPECT_EQ(kept, expected);
}

TEST(ProxyWireTest, UpstreamHeadSetsItsOwnFraming) {
  HeaderList headers = {{"host", "product:8888"},
                        {"content-length", "999"},
                        {"expect", "100-continue"},
                        {"connection", "close"},
                        {"x-forwarded-for", "10.0.0.1"}};

  std::string head = FormatUpstreamRequestHead("POST", "/api?x=1", headers,
                                               UpstreamBody::kContentLength, 12, false, "unused");

  EXPECT_EQ(head,
            "POST /api?x=1 HTTP/1.1\r\n"
            "host: product:8888\r\n"
            "x-forwarded-for: 10.0.0.1\r\n"
            "Content-Length: 12\r\n"
            "Connection: close\r\n"
            "\r\n");
}

TEST(ProxyWireTest, UpstreamHeadForWebSocketAndMissingHost) {
  HeaderList headers = {{"sec-websocket-key", "abc=="}, {"sec-websocket-version", "13"},
                        {"upgrade", "websocket"},       {"connection", "Upgrade"}};

  std::string head = FormatUpstreamRequestHead("GET", "/ws", headers, UpstreamBody::kNone, 0, true,
                                               "127.0.0.1:9");

  EXPECT_EQ(head,
            "GET /ws HTTP/1.1\r\n"
            "sec-websocket-key: abc==\r\n"
            "sec-websocket-version: 13\r\n"
            "Host: 127.0.0.1:9\r\n"
            "Connection: Upgrade\r\n"
            "Upgrade: websocket\r\n"
            "\r\n");
}

TEST(ProxyWireTest, ChecksRequestHeaders) {
  EXPECT_TRUE(CheckRequestHeaders({{"x-ok", "value\twith tab"}}));
  EXPECT_FALSE(CheckRequestHeaders({{"x-bad", "a\r\nInjected: 1"}}));
  EXPECT_FALSE(CheckRequestHeaders({{"bad name", "a"}}));
  EXPECT_FALSE(CheckRequestHeaders({{"", "a"}}));
}

TEST(ProxyWireTest, RecognisesWebSocketUpgrade) {
  Request request;
  request.method = "GET";
  request.headers = {{"connection", "keep-alive, Upgrade"}, {"upgrade", "WebSocket"}};
  EXPECT_TRUE(IsWebSocketUpgrade(request));

  request.method = "POST";
  EXPECT_FALSE(IsWebSocketUpgrade(request));
  request.method = "GET";
  request.headers = {{"connection", "upgrade"}, {"upgrade", "h2c"}};
  EXPECT_FALSE(IsWebSocketUpgrade(request));
  request.headers = {{"upgrade", "websocket"}};
  EXPECT_FALSE(IsWebSocketUpgrade(request));
}

TEST(ProxyWireTest, ProxiedResponseRemovesAndAddsHeaders) {
  ProxyTarget target;
  target.remove_response_headers = {"set-cookie"};
  target.add_response_headers = {{"X-Frame-Options", "DENY"}, {"content-type", "text/plain"}};
  HeaderList product = {{"Content-Type", "text/html"},
                        {"Set-Cookie", "a=1"},
                        {"Connection", "X-Hop"},
                        {"X-Hop", "1"},
                        {"Keep-Alive", "timeout=5"},
                        {"X-Other", "kept"}};

  Response response = MakeProxiedResponse(200, product, target);

  HeaderList expected = {{"x-other", "kept"}, {"x-frame-options", "DENY"},
                         {"content-type", "text/plain"}};
  EXPECT_EQ(response.headers, expected);
}

TEST(ProxyWireTest, UpgradeResponseHead) {
  Response response;
  response.status = 101;
  response.headers = {{"sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
                      {"upgrade", "websocket"}};

  EXPECT_EQ(FormatUpgradeResponseHead(response),
            "HTTP/1.1 101 Switching Protocols\r\n"
            "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Connection: Upgrade\r\n"
            "Upgrade: websocket\r\n"
            "\r\n");
}

TEST(ProxyWireTest, FormatsChunk) {
  EXPECT_EQ(FormatChunk("hello world, hello"), "12\r\nhello world, hello\r\n");
}

TEST(WebSocketMessageReaderTest, UnmasksSingleFrameMessages) {
  MessageCollector collector;
  WebSocketMessageReader reader = collector.Reader();

  EXPECT_TRUE(reader.Feed(MaskedFrame(true, 0x1, "hello") + MaskedFrame(true, 0x2, "\x01\x02\x03")));

  EXPECT_EQ(collector.messages, (std::vector<std::string>{"hello", "\x01\x02\x03"}));
}

TEST(WebSocketMessageReaderTest, JoinsFragmentsAroundControlFrames) {
  MessageCollector collector;
  WebSocketMessageReader reader = collector.Reader();
  std::string stream = MaskedFrame(false, 0x1, "Hello, ", "\x01\x02\x03\x04") +
                       MaskedFrame(true, 0x9, "ping") +
                       MaskedFrame(false, 0x0, "fragmented ", "\xaa\xbb\xcc\xdd") +
                       MaskedFrame(true, 0xa, "") + MaskedFrame(true, 0x0, "world");

  // One byte at a time, so every header and payload is split.
  for (char byte : stream) ASSERT_TRUE(reader.Feed(std::string_view(&byte, 1)));

  EXPECT_EQ(collector.messages, (std::vector<std::string>{"Hello, fragmented world"}));
}

TEST(WebSocketMessageReaderTest, ReadsExtendedLengths) {
  MessageCollector collector;
  WebSocketMessageReader reader = collector.Reader(1 << 20);
  std::string medium(300, 'm');
  std::string large(70000, 'L');
  large[69999] = 'Z';

  EXPECT_TRUE(reader.Feed(MaskedFrame(true, 0x2, medium) + MaskedFrame(true, 0x1, large)));

  ASSERT_EQ(collector.messages.size(), 2u);
  EXPECT_EQ(collector.messages[0], medium);
  EXPECT_EQ(collector.messages[1], large);
}

TEST(WebSocketMessageReaderTest, CutsMessagesAtLimit) {
  MessageCollector collector;
  WebSocketMessageReader reader = collector.Reader(64 << 10);
  std::string payload(100000, 'x');
  payload[0] = 'a';

  EXPECT_TRUE(reader.Feed(MaskedFrame(true, 0x2, payload) + MaskedFrame(true, 0x1, "next")));

  ASSERT_EQ(collector.messages.size(), 2u);
  EXPECT_EQ(collector.messages[0], payload.substr(0, 64 << 10));
  EXPECT_EQ(collector.messages[1], "next");
}

TEST(WebSocketMessageReaderTest, ReadsUnmaskedFramesAndEmptyMessages) {
  MessageCollector collector;
  WebSocketMessageReader reader = collector.Reader();

  EXPECT_TRUE(reader.Feed(std::string("\x81\x02hi", 4) + std::string("\x81\x00", 2)));

  EXPECT_EQ(collector.messages, (std::vector<std::string>{"hi", ""}));
}

TEST(WebSocketMessageReaderTest, RejectsInvalidFraming) {
  MessageCollector collector;
  WebSocketMessageReader continuation_first = collector.Reader();
  EXPECT_FALSE(continuation_first.Feed(MaskedFrame(true, 0x0, "orphan")));

  WebSocketMessageReader nested = collector.Reader();
  EXPECT_FALSE(nested.Feed(MaskedFrame(false, 0x1, "a") + MaskedFrame(true, 0x1, "b")));

  WebSocketMessageReader reserved = collector.Reader();
  EXPECT_FALSE(reserved.Feed(MaskedFrame(true, 0x3, "x")));

  WebSocketMessageReader fragmented_ping = collector.Reader();
  EXPECT_FALSE(fragmented_ping.Feed(MaskedFrame(false, 0x9, "x")));
  EXPECT_FALSE(fragmented_ping.Feed(MaskedFrame(true, 0x1, "after")));

  EXPECT_TRUE(collector.messages.empty());
}

}  // namespace
}  // namespace puddle::http
