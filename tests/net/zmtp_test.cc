// The ZMTP parser of herd-ctld's server: every byte a peer may send, cut anywhere, and every bound
// checked before the bytes it guards are held.
#include "common/net/zmtp.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace herd::net::zmtp {
namespace {

using Kind = Event::Kind;

// A DEALER's greeting (ZMTP 3.1, NULL), as libzmq sends it.
std::string PeerGreeting(int major = 3, int minor = 1, const std::string& mechanism = "NULL") {
  std::string g(kGreetingBytes, '\0');
  g[0] = '\xff';
  g[8] = 1;
  g[9] = 0x7f;
  g[10] = static_cast<char>(major);
  g[11] = static_cast<char>(minor);
  g.replace(12, mechanism.size(), mechanism);
  return g;
}

std::string Property(const std::string& name, const std::string& value) {
  std::string p(1, static_cast<char>(name.size()));
  p += name;
  for (int i = 3; i >= 0; --i) p.push_back(static_cast<char>((value.size() >> (8 * i)) & 0xff));
  return p + value;
}

std::string ReadyOf(const std::string& socket_type) {
  return Command("READY", Property("Socket-Type", socket_type) + Property("Identity", ""));
}

std::string LongHeader(uint8_t flags, uint64_t size) {
  std::string h(1, static_cast<char>(flags | 0x02));
  for (int i = 7; i >= 0; --i) h.push_back(static_cast<char>((size >> (8 * i)) & 0xff));
  return h;
}

// Greeting and READY: what a DEALER sends before any message.
std::string Hello() { return PeerGreeting() + ReadyOf("DEALER"); }

Limits Small() {
  Limits l;
  l.max_message_bytes = 1000;
  l.max_frames = 4;
  l.max_command_bytes = 64;
  return l;
}

// What a whole conversation yields, fed in the given pieces.
struct Outcome {
  std::vector<Event> events;
  Status status = Status::Ok();
};

Outcome FeedPieces(const std::vector<std::string>& pieces, const Limits& limits = Small()) {
  Parser parser(limits);
  Outcome o;
  for (const std::string& piece : pieces) {
    o.status = parser.Feed(piece, o.events);
    if (!o.status.ok()) break;
  }
  return o;
}

// greeting, READY, a PING, a 2-frame message (short + long), a LONG-flagged 3-byte frame, an
// empty frame.
std::string Conversation() {
  return PeerGreeting() + ReadyOf("DEALER") + Command("PING", std::string("\0\x0a" "ctx", 5)) +
         FrameHeader(5, true) + "hello" + FrameHeader(300, false) + std::string(300, 'x') +
         LongHeader(0, 3) + "abc" + FrameHeader(0, false);
}

void ExpectConversation(const Outcome& o) {
  ASSERT_TRUE(o.status.ok()) << o.status.message();
  ASSERT_EQ(o.events.size(), 6u);
  EXPECT_EQ(o.events[0].kind, Kind::kGreeting);
  EXPECT_EQ(o.events[0].minor_version, 1);
  EXPECT_EQ(o.events[1].kind, Kind::kCommand);
  EXPECT_EQ(o.events[1].name, "READY");
  auto type = SocketTypeOfReady(o.events[1].data);
  ASSERT_TRUE(type.ok()) << type.status().message();
  EXPECT_EQ(*type, "DEALER");
  EXPECT_EQ(o.events[2].name, "PING");
  EXPECT_EQ(o.events[2].data, std::string("\0\x0a" "ctx", 5));
  ASSERT_EQ(o.events[3].kind, Kind::kMessage);
  ASSERT_EQ(o.events[3].frames.size(), 2u);
  EXPECT_EQ(o.events[3].frames[0], "hello");
  EXPECT_EQ(o.events[3].frames[1], std::string(300, 'x'));
  EXPECT_EQ(o.events[4].frames, std::vector<std::string>{"abc"});
  EXPECT_EQ(o.events[5].frames, std::vector<std::string>{""});
}

TEST(ZmtpParserTest, WholeConversationAtOnce) { ExpectConversation(FeedPieces({Conversation()})); }

TEST(ZmtpParserTest, ConversationOneByteAtATime) {
  std::vector<std::string> bytes;
  for (char c : Conversation()) bytes.emplace_back(1, c);
  ExpectConversation(FeedPieces(bytes));
}

TEST(ZmtpParserTest, ConversationCutInTwoAtEveryByte) {
  const std::string all = Conversation();
  for (size_t cut = 0; cut <= all.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    ExpectConversation(FeedPieces({all.substr(0, cut), all.substr(cut)}));
  }
}

// libzmq sends the signature, then the major version, then the rest, each once it has read ours.
TEST(ZmtpParserTest, GreetingInLibzmqsStages) {
  const std::string g = PeerGreeting();
  Outcome o = FeedPieces({g.substr(0, 10), g.substr(10, 1), g.substr(11)});
  ASSERT_TRUE(o.status.ok()) << o.status.message();
  ASSERT_EQ(o.events.size(), 1u);
  EXPECT_EQ(o.events[0].kind, Kind::kGreeting);
}

TEST(ZmtpParserTest, GreetingsOtherThanZmtp3NullAreRefused) {
  EXPECT_FALSE(FeedPieces({"GET / HTTP/1.1\r\n"}).status.ok()) << "refused at the first byte";
  EXPECT_FALSE(FeedPieces({PeerGreeting(2, 0)}).status.ok());
  EXPECT_FALSE(FeedPieces({PeerGreeting(3, 1, "PLAIN")}).status.ok());
  EXPECT_FALSE(FeedPieces({PeerGreeting(3, 1, "NULLX")}).status.ok());
  std::string bad_signature = PeerGreeting();
  bad_signature[9] = 0;
  EXPECT_FALSE(FeedPieces({bad_signature}).status.ok());
  Outcome zmtp30 = FeedPieces({PeerGreeting(3, 0)});
  ASSERT_TRUE(zmtp30.status.ok());
  EXPECT_EQ(zmtp30.events.at(0).minor_version, 0);
}

TEST(ZmtpParserTest, ReservedFlagsAndCommandsMarkedMoreAreRefused) {
  EXPECT_FALSE(FeedPieces({PeerGreeting() + std::string("\x08\x00", 2)}).status.ok());
  EXPECT_FALSE(FeedPieces({PeerGreeting() + std::string("\x80\x00", 2)}).status.ok());
  EXPECT_FALSE(FeedPieces({PeerGreeting() + std::string("\x05\x00", 2)}).status.ok());
}

// An 8-byte size is checked when its header is complete, before any of the body is held: no
// value (2^64-1, 2^63, just over the limit) wraps around the limit.
TEST(ZmtpParserTest, HugeDeclaredSizesAreRefusedAtTheHeader) {
  for (uint64_t size : {~uint64_t{0}, uint64_t{1} << 63, (uint64_t{1} << 63) - 1,
                        uint64_t{1001}, uint64_t{1} << 32}) {
    SCOPED_TRACE(size);
    Parser parser(Small());
    std::vector<Event> events;
    ASSERT_TRUE(parser.Feed(PeerGreeting(), events).ok());
    EXPECT_FALSE(parser.Feed(LongHeader(0, size), events).ok());
    EXPECT_EQ(parser.buffered(), 0);
    Parser commands(Small());
    ASSERT_TRUE(commands.Feed(PeerGreeting(), events).ok());
    EXPECT_FALSE(commands.Feed(LongHeader(0x04, size), events).ok());
  }
}

TEST(ZmtpParserTest, WholeMessageIsBoundedAcrossItsFrames) {
  Limits l = Small();
  // 3 frames of 300 fit in 1000; a fourth of 101 would not.
  std::string frames = FrameHeader(300, true) + std::string(300, 'a') + FrameHeader(300, true) +
                       std::string(300, 'b') + FrameHeader(300, true) + std::string(300, 'c');
  Parser parser(l);
  std::vector<Event> events;
  ASSERT_TRUE(parser.Feed(Hello() + frames, events).ok());
  EXPECT_EQ(parser.buffered(), 900);
  EXPECT_TRUE(parser.partial());
  EXPECT_FALSE(parser.Feed(FrameHeader(101, false), events).ok());
  Parser exact(l);
  ASSERT_TRUE(exact.Feed(Hello() + frames + FrameHeader(100, false) +
                             std::string(100, 'd'), events).ok());
  EXPECT_EQ(events.back().frames.size(), 4u);
  EXPECT_EQ(exact.buffered(), 0);
  EXPECT_FALSE(exact.partial());
}

TEST(ZmtpParserTest, FramesOfOneMessageAreCountedEvenWhenEmpty) {
  std::string four_empty;
  for (int i = 0; i < 4; ++i) four_empty += FrameHeader(0, true);
  Outcome o = FeedPieces({Hello() + four_empty + FrameHeader(0, true)});
  EXPECT_FALSE(o.status.ok()) << "a fifth frame was accepted";
  Outcome last = FeedPieces({Hello() + four_empty.substr(0, 6) + FrameHeader(0, false)});
  ASSERT_TRUE(last.status.ok()) << last.status.message();
  EXPECT_EQ(last.events.back().frames.size(), 4u);
}

TEST(ZmtpParserTest, CommandsAreBoundedAndMayComeBetweenFrames) {
  EXPECT_FALSE(FeedPieces({PeerGreeting() + Command("READY", std::string(64, 'x'))}).status.ok());
  Outcome o = FeedPieces({Hello() + FrameHeader(1, true) + "a" + Command("PING", "\0\0") +
                          FrameHeader(1, false) + "b"});
  ASSERT_TRUE(o.status.ok()) << o.status.message();
  ASSERT_EQ(o.events.size(), 4u);
  EXPECT_EQ(o.events[2].name, "PING");
  EXPECT_EQ(o.events[3].frames, (std::vector<std::string>{"a", "b"}));
  // A command whose name runs past its frame yields no name (refused by the server).
  Outcome truncated = FeedPieces({PeerGreeting() + std::string("\x04\x02\x09X", 4)});
  ASSERT_TRUE(truncated.status.ok());
  EXPECT_EQ(truncated.events.back().name, "");
}

// Memory follows the bytes that arrived, not the size a header declares.
TEST(ZmtpParserTest, PartialFrameHoldsOnlyWhatArrived) {
  Limits l;
  l.max_message_bytes = 16 << 20;
  Parser parser(l);
  std::vector<Event> events;
  ASSERT_TRUE(parser.Feed(Hello() + LongHeader(0, 16 << 20) + "0123456789", events).ok());
  EXPECT_EQ(parser.buffered(), 10);
  EXPECT_TRUE(parser.partial());
}

// Before READY only commands may come: a message frame is refused at its header, before any of
// its body is held.
TEST(ZmtpParserTest, MessageFrameBeforeReadyIsRefusedAtItsHeader) {
  Parser parser(Small());
  std::vector<Event> events;
  ASSERT_TRUE(parser.Feed(PeerGreeting() + Command("PING", std::string("\0\0", 2)), events).ok());
  Status s = parser.Feed(FrameHeader(500, false), events);
  EXPECT_FALSE(s.ok()) << "a message frame before READY was accepted";
  EXPECT_EQ(parser.buffered(), 0);
}

TEST(ZmtpParserTest, ReadyPropertiesAreCheckedAgainstTheirLengths) {
  EXPECT_EQ(*SocketTypeOfReady(Property("Identity", "x") + Property("socket-type", "DEALER")),
            "DEALER");
  EXPECT_FALSE(SocketTypeOfReady(Property("Identity", "x")).ok());
  std::string lying = Property("Socket-Type", "DEALER");
  lying[12] = '\xff';  // value length 0xff000006
  EXPECT_FALSE(SocketTypeOfReady(lying).ok());
  EXPECT_FALSE(SocketTypeOfReady(std::string("\x40Socket-Type", 12)).ok());
  EXPECT_FALSE(SocketTypeOfReady(std::string("\x00", 1)).ok());
}

TEST(ZmtpParserTest, FramesWeSendAreWhatWeParse) {
  const std::string body(70000, 'z');
  Outcome o = FeedPieces({Hello() + FrameHeader(body.size(), false) + body + Ready("ROUTER")},
                         Limits{});
  ASSERT_TRUE(o.status.ok()) << o.status.message();
  ASSERT_EQ(o.events.size(), 4u);
  EXPECT_EQ(o.events[2].frames.at(0), body);
  EXPECT_EQ(*SocketTypeOfReady(o.events[3].data), "ROUTER");
  EXPECT_EQ(Greeting(true).size(), kGreetingBytes);
}

}  // namespace
}  // namespace herd::net::zmtp
