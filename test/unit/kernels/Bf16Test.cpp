//===- Bf16Test.cpp - bf16 rounding against hand-computed bits ---------------===//
//
// pipert::bf16 (runtime/kernels/cuda/Bf16.h) is the rounding of every bf16
// storage point of the cuda target, on the GPU and in the CPU emulation: it
// must round to nearest with ties to even, carry into the exponent, round
// the largest floats to infinity and keep NaNs. Each case below is worked
// out by hand from the fp32 bits.
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/Bf16.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>

using pipert::bf16::fromFloat;
using pipert::bf16::toFloat;

static float fromBits(uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

TEST(Bf16, RoundsToNearestTiesToEven) {
  EXPECT_EQ(fromFloat(1.0f), 0x3f80);
  // bf16 has 7 fraction bits: near 1 its ulp is 2^-7.
  EXPECT_EQ(fromFloat(1.0f + 0x1p-8f), 0x3f80);          // halfway, to even (down)
  EXPECT_EQ(fromFloat(1.0f + 3 * 0x1p-8f), 0x3f82);      // halfway, to even (up)
  EXPECT_EQ(fromFloat(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81); // above halfway
  EXPECT_EQ(fromFloat(1.0f + 0x1p-8f - 0x1p-20f), 0x3f80); // below halfway
  EXPECT_EQ(fromFloat(-1.0f - 3 * 0x1p-8f), 0xbf82);     // the sign is kept
  // 0x3fffffff rounds up through all fraction bits into the exponent: 2.0.
  EXPECT_EQ(fromFloat(fromBits(0x3fffffffu)), 0x4000);
  EXPECT_EQ(fromFloat(FLT_MAX), 0x7f80);                  // to +inf
  EXPECT_EQ(fromFloat(-FLT_MAX), 0xff80);
  EXPECT_EQ(fromFloat(INFINITY), 0x7f80);
  EXPECT_EQ(fromFloat(-0.0f), 0x8000);
  EXPECT_EQ(fromFloat(fromBits(0x00018000u)), 0x0002);    // subnormal tie, to even
  EXPECT_EQ(fromFloat(fromBits(0x00008000u)), 0x0000);    // subnormal tie, to even (0)
}

TEST(Bf16, KeepsNaNsQuiet) {
  uint16_t q = fromFloat(NAN);
  EXPECT_EQ(q & 0x7f80, 0x7f80);
  EXPECT_NE(q & 0x007f, 0);
  // A signalling NaN whose payload lies only in the dropped bits stays a NaN.
  uint16_t s = fromFloat(fromBits(0x7f800001u));
  EXPECT_TRUE(std::isnan(toFloat(s)));
  EXPECT_TRUE(std::isnan(toFloat(fromFloat(fromBits(0xffc00000u)))));
}

TEST(Bf16, WidensExactly) {
  for (uint32_t b = 0; b < 0x10000; b += 0x101) {
    float x = toFloat(uint16_t(b));
    if (std::isnan(x))
      continue;
    EXPECT_EQ(fromFloat(x), b) << "bf16 bits " << b;
  }
}
