#include "kernels/q4_panels.h"

#include <cstring>

namespace smolvlm::kernels {

size_t q4_panel_bytes(int rows, int cols) {
  const size_t panels = static_cast<size_t>((rows + kQ4PanelRows - 1) / kQ4PanelRows);
  return panels * q4_panel_stride(cols);
}

void pack_q4_panels(const Matrix& w, uint8_t* out) {
  const int blocks = w.cols / kQ8BlockSize;
  const size_t stride = q4_panel_stride(w.cols);
  std::memset(out, 0, q4_panel_bytes(w.rows, w.cols));
  for (int r = 0; r < w.rows; ++r) {
    uint8_t* panel = out + static_cast<size_t>(r / kQ4PanelRows) * stride;
    const int lane = r % kQ4PanelRows;
    const uint8_t* row = w.row(r);
    for (int b = 0; b < blocks; ++b) {
      const uint8_t* block = row + static_cast<size_t>(b) * kQ4BlockBytes;
      uint8_t* nib = panel + static_cast<size_t>(b) * kQ4PanelNibbleBytes;
      for (int g = 0; g < 4; ++g) std::memcpy(nib + 64 * g + 4 * lane, block + 2 + 4 * g, 4);
      std::memcpy(panel + static_cast<size_t>(blocks) * kQ4PanelNibbleBytes +
                      static_cast<size_t>(b) * kQ4PanelScaleBytes + 2 * lane,
                  block, 2);
    }
  }
}

void q4_panel_block(const Matrix& w, int r, int b, uint8_t* block) {
  const int blocks = w.cols / kQ8BlockSize;
  const uint8_t* panel = w.panels + static_cast<size_t>(r / kQ4PanelRows) * q4_panel_stride(w.cols);
  const int lane = r % kQ4PanelRows;
  const uint8_t* nib = panel + static_cast<size_t>(b) * kQ4PanelNibbleBytes;
  for (int g = 0; g < 4; ++g) std::memcpy(block + 2 + 4 * g, nib + 64 * g + 4 * lane, 4);
  std::memcpy(block,
              panel + static_cast<size_t>(blocks) * kQ4PanelNibbleBytes +
                  static_cast<size_t>(b) * kQ4PanelScaleBytes + 2 * lane,
              2);
}

}  // namespace smolvlm::kernels
