// Decoding pictures as PIL does (JPEG, PNG, WebP, GIF, BMP, TIFF; AVIF and HEIF as libavif and
// libheif decode them); the pixels are smolvlm::Image.
#pragma once

#include <smolvlm/image.h>

#include <cstdint>
#include <string>
#include <vector>

namespace smolvlm {

// Decodes a picture file (the format chosen by magic bytes, not by name) to RGB, exactly as PIL's
// Image.open(...).convert("RGB") does: grey → RGB, palette → RGB, alpha composited over white.
// Throws smolvlm::Error with a one-line message for missing/empty/corrupt/unsupported files.
// (Precisely: the pixels of HF's convert_to_rgb(Image.open(path)) with Pillow 9.4: RGB as decoded,
// any other mode → RGBA → alpha_composite over opaque white → RGB. CMYK JPEGs are converted like
// Pillow; 16-bit grey PNGs clip at 255 like Pillow's mode "I". See image.cpp. Limits: 32768 pixels
// a side, 2^28 pixels in all, max_picture_pixels() (Pillow's decompression-bomb rule, checked
// from the header before any pixel is decoded), 256 MiB files (kMaxImageFileBytes), which must be
// regular files.)
Image load_image_file(const std::string& path);
Image decode_image(const uint8_t* data, size_t size, const std::string& name_for_errors);

// A picture's width and height from its header alone (PNG: IHDR; JPEG: the SOF marker), nothing
// decoded: for counting a prompt's tokens before any picture is decoded or encoded. False where
// the bytes hold no PNG or JPEG header this can read (decoding then says what is wrong).
bool image_header_size(const uint8_t* data, size_t size, int& width, int& height);
// The same for a file, reading only the header's bytes; the file is opened as load_image_file
// opens it (a FIFO, a directory or a file over the limit throw the same one-line error).
bool image_file_header_size(const std::string& path, int& width, int& height);

// Size limits every picture obeys (decoded or given as pixels): 32768 a side, 2^28 in all.
// Returns an empty string when the size is acceptable, else the reason.
std::string check_image_dims(int64_t width, int64_t height);
// check_image_dims, then the pixel limit of decoded pictures (max_picture_pixels()).
std::string check_picture_dims(int64_t width, int64_t height);

}  // namespace smolvlm
