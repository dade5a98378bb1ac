#include "train/checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "util/atomic_file.h"
#include "util/crc32.h"
#include "util/error.h"
#include "util/temp_dir.h"

namespace dlmem::train {
namespace {

using dlmem::test_util::TempDir;
using json = nlohmann::json;

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a dlmem::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no dlmem::Error thrown";
  return "";
}

template <typename T>
std::vector<std::byte> raw(const std::vector<T>& v) {
  std::vector<std::byte> out(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

Checkpoint sample_checkpoint() {
  Checkpoint ck;
  ck.model = "resnet18";
  ck.step = 1200;
  ck.epoch = -3;  // any int64 round-trips
  ck.optimizer = "adamw";
  ck.meta = {{"lr", 1e-3}, {"batch", 64}, {"betas", {0.9, 0.999}}, {"note", "héllo"}};
  std::vector<float> w(5 * 7);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(static_cast<float>(i)) * 1e3f;
  w[0] = -0.0f;
  w[1] = std::numeric_limits<float>::denorm_min();
  w[2] = std::numeric_limits<float>::quiet_NaN();
  w[3] = -std::numeric_limits<float>::infinity();
  uint32_t payload_nan = 0x7FA12345;  // a NaN with a payload must survive bit for bit
  std::memcpy(&w[4], &payload_nan, 4);
  ck.tensors.push_back(make_checkpoint_tensor("fc.weight", {5, 7}, w));
  ck.tensors.push_back(make_checkpoint_tensor("steps", {3}, std::vector<int64_t>{-1, 0, 1ll << 62}));
  ck.tensors.push_back(make_checkpoint_tensor("ids", {2, 2}, std::vector<int32_t>{1, -2, 3, -4}));
  ck.tensors.push_back({"scale", "f64", {}, raw(std::vector<double>{3.25})});  // a scalar
  ck.tensors.push_back({"empty", "f32", {0, 3}, {}});
  ck.tensors.push_back({"half", "bf16", {3}, raw(std::vector<uint16_t>{0x3F80, 0xC000, 0x7F81})});
  ck.tensors.push_back({"mask", "bool", {4}, raw(std::vector<uint8_t>{1, 0, 0, 1})});
  return ck;
}

void expect_same(const Checkpoint& a, const Checkpoint& b) {
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.optimizer, b.optimizer);
  EXPECT_EQ(a.meta, b.meta);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].dtype, b.tensors[i].dtype);
    EXPECT_EQ(a.tensors[i].shape, b.tensors[i].shape);
    EXPECT_EQ(a.tensors[i].data, b.tensors[i].data) << a.tensors[i].name;  // bit-exact
  }
}

TEST(Checkpoint, RoundTripIsBitExact) {
  TempDir dir;
  const Checkpoint ck = sample_checkpoint();
  save_checkpoint(dir.file("a.ckpt"), ck);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"a.ckpt"});
  const Checkpoint back = load_checkpoint(dir.file("a.ckpt"));
  expect_same(ck, back);
  ASSERT_NE(back.find("fc.weight"), nullptr);
  EXPECT_EQ(back.find("fc.weight")->numel(), 35);
  EXPECT_EQ(back.find("nope"), nullptr);
  EXPECT_EQ(back.find("ids")->to_i32(), (std::vector<int32_t>{1, -2, 3, -4}));
  EXPECT_EQ(back.find("steps")->to_i64(), (std::vector<int64_t>{-1, 0, 1ll << 62}));
  EXPECT_EQ(back.find("scale")->numel(), 1);
  EXPECT_THROW(back.find("ids")->to_f32(), Error);

  // Saving again over the old file replaces it.
  Checkpoint smaller;
  smaller.model = "tiny";
  save_checkpoint(dir.file("a.ckpt"), smaller);
  expect_same(smaller, load_checkpoint(dir.file("a.ckpt")));
}

TEST(Checkpoint, Layout) {
  const auto file = encode_checkpoint(sample_checkpoint(), "mem");
  ASSERT_GT(file.size(), 24u);
  EXPECT_EQ(std::memcmp(file.data(), "DLMEMCK1", 8), 0);
  EXPECT_EQ(std::to_integer<int>(file[8]), 1);  // version 1, little-endian
  EXPECT_EQ(std::to_integer<int>(file[9]) | std::to_integer<int>(file[10]) |
                std::to_integer<int>(file[11]),
            0);
  uint64_t header_bytes = 0;
  for (int i = 0; i < 8; ++i) header_bytes |= uint64_t{std::to_integer<uint8_t>(file[12 + i])} << (8 * i);
  EXPECT_EQ((20 + header_bytes) % 64, 0u);  // the data region is 64-byte aligned
  const json header = json::parse(reinterpret_cast<const char*>(file.data()) + 20,
                                  reinterpret_cast<const char*>(file.data()) + 20 + header_bytes);
  EXPECT_EQ(header["model"], "resnet18");
  EXPECT_EQ(file.size(), 24 + header_bytes + header["data_bytes"].get<uint64_t>());
  for (const json& t : header["tensors"]) EXPECT_EQ(t["offset"].get<uint64_t>() % 64, 0u);
  const auto* weight = &header["tensors"][0];
  EXPECT_EQ((*weight)["bytes"], 140);
  // The first f32 after -0.0 is denorm_min, stored little-endian: 01 00 00 00.
  const size_t w = 20 + header_bytes + (*weight)["offset"].get<uint64_t>();
  EXPECT_EQ(std::to_integer<int>(file[w + 4]), 1);
  EXPECT_EQ(std::to_integer<int>(file[w + 3]), 0x80);  // -0.0f = 00 00 00 80
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) stored |= uint32_t{std::to_integer<uint8_t>(file[file.size() - 4 + i])} << (8 * i);
  EXPECT_EQ(stored, crc32(std::span(file).first(file.size() - 4)));
}

// Every single-byte change anywhere in the file -- magic, version, header length,
// header JSON, its padding, tensor data, gaps and the checksum -- is refused.
TEST(Checkpoint, EveryFlippedByteIsRefused) {
  const auto good = encode_checkpoint(sample_checkpoint(), "mem");
  for (size_t i = 0; i < good.size(); ++i) {
    for (std::byte mask : {std::byte{0x01}, std::byte{0x80}, std::byte{0xFF}}) {
      auto bad = good;
      bad[i] ^= mask;
      const std::string msg = message_of([&] { decode_checkpoint(bad, "bad.ckpt"); });
      ASSERT_NE(msg.find("bad.ckpt"), std::string::npos) << "byte " << i << ": " << msg;
    }
  }
}

TEST(Checkpoint, FlipsInEachRegionOnDisk) {
  TempDir dir;
  const std::string path = dir.file("m.ckpt");
  save_checkpoint(path, sample_checkpoint());
  const auto good = read_file(path);
  uint64_t header_bytes = 0;
  for (int i = 0; i < 8; ++i) header_bytes |= uint64_t{std::to_integer<uint8_t>(good[12 + i])} << (8 * i);
  struct Case {
    size_t at;
    const char* expect;
  };
  const Case cases[] = {
      {0, "not a dlmem checkpoint"},
      {8, "newer dlmem"},
      {12, "checksum mismatch"},
      {19, "truncated"},
      {22, "checksum mismatch: the file is corrupt"},          // inside the JSON
      {20 + header_bytes + 5, "checksum mismatch: the file is corrupt"},  // tensor data
      {good.size() - 1, "checksum mismatch: the file is corrupt"},        // the CRC itself
  };
  for (const Case& c : cases) {
    auto bad = good;
    bad[c.at] ^= std::byte{0x10};
    write_file_atomic(path, bad);
    const std::string msg = message_of([&] { load_checkpoint(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << c.at << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.at << ": " << msg;
  }
}

TEST(Checkpoint, TruncationAtEveryLengthIsRefused) {
  const auto good = encode_checkpoint(sample_checkpoint(), "mem");
  for (size_t n = 0; n < good.size(); ++n) {
    const std::string msg =
        message_of([&] { decode_checkpoint(std::span(good).first(n), "cut.ckpt"); });
    ASSERT_NE(msg.find("cut.ckpt"), std::string::npos) << n << ": " << msg;
  }
  const std::string msg = message_of([&] { decode_checkpoint(std::span(good).first(good.size() - 100), "cut.ckpt"); });
  EXPECT_NE(msg.find("is truncated: expected " + std::to_string(good.size()) + " bytes, file has " +
                     std::to_string(good.size() - 100)),
            std::string::npos)
      << msg;
  auto longer = good;
  longer.push_back(std::byte{0});
  EXPECT_NE(message_of([&] { decode_checkpoint(longer, "long.ckpt"); }).find("data appended"),
            std::string::npos);
}

TEST(Checkpoint, WrongMagicEmptyAndMissingFiles) {
  TempDir dir;
  const std::string path = dir.file("x.ckpt");
  write_file_atomic(path, {});
  std::string msg = message_of([&] { load_checkpoint(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a dlmem checkpoint (the file is empty)"), std::string::npos) << msg;

  const std::string text = "{\"model\": \"this is JSON, not a checkpoint\"}";
  write_file_atomic(path, std::as_bytes(std::span(text.data(), text.size())));
  msg = message_of([&] { load_checkpoint(path); });
  EXPECT_NE(msg.find("not a dlmem checkpoint"), std::string::npos) << msg;

  const std::string prefix = "DLMEM";
  write_file_atomic(path, std::as_bytes(std::span(prefix.data(), prefix.size())));
  msg = message_of([&] { load_checkpoint(path); });
  EXPECT_NE(msg.find("truncated: expected at least 24 bytes, file has 5"), std::string::npos) << msg;

  msg = message_of([&] { load_checkpoint(dir.file("missing.ckpt")); });
  EXPECT_NE(msg.find(dir.file("missing.ckpt")), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
}

// ---- forged files: a correct checksum over a bad header, so validation must catch it ----

std::vector<std::byte> forge(const std::string& header, size_t data_bytes, uint32_t version = 1,
                             std::optional<uint64_t> header_len = std::nullopt) {
  std::vector<std::byte> out;
  for (char c : std::string("DLMEMCK1")) out.push_back(static_cast<std::byte>(c));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(version >> (8 * i)));
  const uint64_t hl = header_len.value_or(header.size());
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>(hl >> (8 * i)));
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  out.resize(out.size() + data_bytes, std::byte{0x42});
  const uint32_t crc = crc32(out);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(crc >> (8 * i)));
  return out;
}

std::string forged_error(const json& header, size_t data_bytes) {
  return message_of([&] { decode_checkpoint(forge(header.dump(), data_bytes), "f.ckpt"); });
}

json base_header() {
  return {{"model", "m"},  {"step", 1},     {"epoch", 0}, {"optimizer", "sgd"},
          {"meta", nullptr}, {"data_bytes", 64},
          {"tensors", json::array({{{"name", "w"}, {"dtype", "f32"}, {"shape", {2, 3}},
                                    {"offset", 0}, {"bytes", 24}}})}};
}

TEST(Checkpoint, ForgedHeadersAreRefused) {
  // The base is valid.
  const Checkpoint ok = decode_checkpoint(forge(base_header().dump(), 64), "f.ckpt");
  ASSERT_EQ(ok.tensors.size(), 1u);
  EXPECT_EQ(ok.tensors[0].data, std::vector<std::byte>(24, std::byte{0x42}));

  EXPECT_NE(message_of([&] { decode_checkpoint(forge(base_header().dump(), 64, 2), "f.ckpt"); })
                .find("written by a newer dlmem (format version 2; this build reads version 1)"),
            std::string::npos);
  EXPECT_NE(message_of([&] { decode_checkpoint(forge(base_header().dump(), 64, 0), "f.ckpt"); })
                .find("format version 0"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              decode_checkpoint(forge("", 0, 1, std::numeric_limits<uint64_t>::max()), "f.ckpt");
            }).find("truncated"),
            std::string::npos);
  EXPECT_NE(message_of([&] { decode_checkpoint(forge("{not json", 0), "f.ckpt"); })
                .find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              decode_checkpoint(forge(base_header().dump() + std::string(1, '\0') + "junk", 64),
                                "f.ckpt");
            }).find("NUL byte"),
            std::string::npos);
  EXPECT_NE(message_of([&] { decode_checkpoint(forge("[1,2]", 0), "f.ckpt"); })
                .find("not a JSON object"),
            std::string::npos);

  struct Case {
    std::function<void(json&)> edit;
    const char* expect;
  };
  const Case cases[] = {
      {[](json& h) { h.erase("model"); }, "has no \"model\""},
      {[](json& h) { h["step"] = "one"; }, "\"step\" is not an integer"},
      {[](json& h) { h["step"] = 1.5; }, "\"step\" is not an integer"},
      {[](json& h) { h["epoch"] = std::numeric_limits<uint64_t>::max(); }, "out of range"},
      {[](json& h) { h["data_bytes"] = -1; }, "not a non-negative integer"},
      {[](json& h) { h["data_bytes"] = 1000; }, "truncated"},
      {[](json& h) { h["tensors"] = 5; }, "\"tensors\" is not an array"},
      {[](json& h) { h["tensors"][0] = 5; }, "tensor 0 is not a JSON object"},
      {[](json& h) { h["tensors"][0]["dtype"] = "f8"; }, "unknown dtype 'f8'"},
      {[](json& h) { h["tensors"][0]["shape"] = {2, -3}; }, "negative dimension"},
      {[](json& h) { h["tensors"][0]["shape"] = "2x3"; }, "shape is not an array"},
      {[](json& h) { h["tensors"][0]["bytes"] = 20; }, "has 20 bytes, expected 24"},
      {[](json& h) { h["tensors"][0]["offset"] = 48; }, "outside the data region"},
      {[](json& h) { h["tensors"][0]["offset"] = std::numeric_limits<uint64_t>::max(); },
       "outside the data region"},
      {[](json& h) {
         h["tensors"][0]["shape"] = {1ll << 40, 1ll << 40};
         h["tensors"][0]["bytes"] = 0;
       },
       "expected more than 2^64"},
      {[](json& h) { h["tensors"].push_back(h["tensors"][0]); }, "two tensors are named 'w'"},
      {[](json& h) { h["tensors"][0].erase("offset"); }, "has no \"offset\""},
  };
  for (const Case& c : cases) {
    json h = base_header();
    c.edit(h);
    const std::string msg = forged_error(h, 64);
    EXPECT_NE(msg.find("f.ckpt"), std::string::npos) << h.dump() << "\n" << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << h.dump() << "\n" << msg;
  }
}

// Random edits anywhere before the checksum, with the checksum then made to match, so
// that the parser and the validation see hostile input: every outcome is a checkpoint
// whose tensors agree with their shapes, or a dlmem::Error; never a crash or an
// over-read (run under ASan to see the latter).
TEST(Checkpoint, ForgedRandomEditsNeverCrash) {
  const auto good = encode_checkpoint(sample_checkpoint(), "mem");
  const size_t body = good.size() - 4;
  uint64_t state = 12345;
  const auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  int refused = 0, accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<std::byte> bad(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(body));
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits; ++e) {
      // Mostly the header, where the structure is.
      const size_t at = next() % 3 != 0 ? next() % std::min<size_t>(body, 400) : next() % body;
      bad[at] = static_cast<std::byte>(next() & 0xFF);
    }
    const uint32_t crc = crc32(bad);
    for (int i = 0; i < 4; ++i) bad.push_back(static_cast<std::byte>(crc >> (8 * i)));
    try {
      const Checkpoint ck = decode_checkpoint(bad, "r.ckpt");
      for (const CheckpointTensor& t : ck.tensors)
        ASSERT_EQ(t.data.size(), static_cast<size_t>(t.numel()) * *checkpoint_dtype_size(t.dtype));
      ++accepted;
    } catch (const Error& e) {
      ASSERT_NE(std::string(e.what()).find("r.ckpt"), std::string::npos) << e.what();
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(accepted, 0);  // edits inside tensor data or the padding are legal
}

TEST(Checkpoint, SaveRefusesBadTensors) {
  TempDir dir;
  const std::string path = dir.file("s.ckpt");
  const auto save_error = [&](CheckpointTensor t) {
    Checkpoint ck;
    ck.tensors.push_back(std::move(t));
    return message_of([&] { save_checkpoint(path, ck); });
  };
  EXPECT_NE(save_error({"a", "float", {1}, std::vector<std::byte>(4)}).find("dtype 'float'"),
            std::string::npos);
  EXPECT_NE(save_error({"a", "f32", {2, 2}, std::vector<std::byte>(12)})
                .find("needs 16 bytes of data, it has 12"),
            std::string::npos);
  EXPECT_NE(save_error({"a", "f32", {-1}, {}}).find("invalid shape"), std::string::npos);
  EXPECT_NE(save_error({"bad\xff", "u8", {1}, std::vector<std::byte>(1)}).find("UTF-8"),
            std::string::npos);

  Checkpoint twice;
  twice.tensors.push_back({"a", "u8", {1}, std::vector<std::byte>(1)});
  twice.tensors.push_back({"a", "u8", {1}, std::vector<std::byte>(1)});
  EXPECT_NE(message_of([&] { save_checkpoint(path, twice); }).find("two tensors are named 'a'"),
            std::string::npos);

  EXPECT_TRUE(dir.entries().empty());  // nothing was written

  EXPECT_NE(message_of([&] { save_checkpoint(dir.file("no/dir/x.ckpt"), Checkpoint{}); })
                .find("does not exist"),
            std::string::npos);
  EXPECT_THROW(make_checkpoint_tensor("w", {2, 2}, std::vector<float>(3)), Error);
}

}  // namespace
}  // namespace dlmem::train
