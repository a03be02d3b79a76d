//===- Elementwise.cpp - add and mul with trailing broadcast -------------===//

#include "kernels/cpu/Elementwise.h"

#include "kernels/cpu/Reduce.h"

namespace pipert::cpu {

template <typename T>
void addForward(T *y, const T *a, const T *b, int64_t n, int64_t bn) {
  int64_t rows = bn ? n / bn : 0;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < bn; ++j)
      y[r * bn + j] = a[r * bn + j] + b[j];
}

template <typename T>
void addBackwardBroadcast(T *db, const T *dy, int64_t n, int64_t bn,
                          bool accumulate) {
  int64_t rows = bn ? n / bn : 0;
  detail::columnSums<T>(db, rows, bn, accumulate,
                        [dy, bn](int64_t r, int64_t c) { return dy[r * bn + c]; });
}

template <typename T>
void mulForward(T *y, const T *a, const T *b, int64_t n, int64_t bn) {
  int64_t rows = bn ? n / bn : 0;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < bn; ++j)
      y[r * bn + j] = a[r * bn + j] * b[j];
}

template <typename T>
void mulBackwardLhs(T *da, const T *dy, const T *b, int64_t n, int64_t bn,
                    bool accumulate) {
  int64_t rows = bn ? n / bn : 0;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < bn; ++j) {
      T g = dy[r * bn + j] * b[j];
      da[r * bn + j] = accumulate ? da[r * bn + j] + g : g;
    }
}

template <typename T>
void mulBackwardRhs(T *db, const T *dy, const T *a, int64_t n, int64_t bn,
                    bool accumulate) {
  int64_t rows = bn ? n / bn : 0;
  detail::columnSums<T>(db, rows, bn, accumulate,
                        [dy, a, bn](int64_t r, int64_t c) {
                          return dy[r * bn + c] * a[r * bn + c];
                        });
}

template <typename T>
void accumulateInto(T *y, const T *x, int64_t n, bool accumulate) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    y[i] = accumulate ? y[i] + x[i] : x[i];
}

#define PIPERT_INSTANTIATE(T)                                                  \
  template void addForward<T>(T *, const T *, const T *, int64_t, int64_t);    \
  template void addBackwardBroadcast<T>(T *, const T *, int64_t, int64_t,      \
                                        bool);                                 \
  template void mulForward<T>(T *, const T *, const T *, int64_t, int64_t);    \
  template void mulBackwardLhs<T>(T *, const T *, const T *, int64_t, int64_t, \
                                  bool);                                       \
  template void mulBackwardRhs<T>(T *, const T *, const T *, int64_t, int64_t, \
                                  bool);                                       \
  template void accumulateInto<T>(T *, const T *, int64_t, bool);
PIPERT_INSTANTIATE(float)
PIPERT_INSTANTIATE(double)
#undef PIPERT_INSTANTIATE

} // namespace pipert::cpu
