// Declared internal interface for `smolvlm convert` and `smolvlm random-model`
// (apps/smolvlm/convert.cpp, random_model.cpp): they write model files, which the public API
// (it loads and runs models) has no business doing. Not a public API: it changes with the file
// code, and other apps use include/smolvlm/ only.
#pragma once

#include "formats/safetensors.h"
#include "loader/gguf_model.h"
#include "model/config.h"
#include "model/weights.h"
