// smolvlm convert: a Hugging Face SmolVLM2 folder → llama.cpp's GGUF pair (text + mmproj).
#include <cctype>
#include <cstdio>
#include <string>

#include "cli.h"
#include "loader/tools_interface.h"
#include "progress.h"
#include "util/input_text.h"

namespace smolvlm::cli {

namespace {

const char kConvertHelp[] =
    "usage: smolvlm convert HF_DIR -o OUT_DIR [--type TYPE] [--vision-type TYPE] [--name NAME]\n"
    "\n"
    "Writes OUT_DIR/NAME-TYPE.gguf (the language model and tokenizer) and\n"
    "OUT_DIR/mmproj-NAME-VTYPE.gguf (the vision encoder and projector), with llama.cpp's tensor\n"
    "names and metadata: llama.cpp and smolvlm read them alike.\n"
    "\n"
    "  -o, --outdir DIR     where to write the two files (created if needed)\n"
    "      --type T         language model weights: q8_0 (default), q4_0, f16, bf16, f32, or\n"
    "                       a K-quant mix as llama-quantize makes it: q4_k_m, q4_k_s, q5_k_m,\n"
    "                       q5_k_s, q6_k, q3_k_m, q2_k (rows not 256-wide fall back to q8_0)\n"
    "      --vision-type T  vision weights: f16 (default), q8_0 or f32 (bf16 also works)\n"
    "      --name NAME      file name stem (default: the folder's name)\n"
    "\n"
    "Norms, biases and the vision embeddings stay F32, as llama.cpp keeps them.\n";

// *small: the _S mix of Q4_K / Q5_K (--type only).
DType parse_type(const std::string& flag, const std::string& s, bool* small) {
  if (s == "q8_0" || s == "Q8_0") return DType::Q8_0;
  if (s == "q4_0" || s == "Q4_0") return DType::Q4_0;
  if (flag == "--type") {
    std::string lower = s;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    *small = lower == "q4_k_s" || lower == "q5_k_s";
    if (lower == "q4_k_m" || lower == "q4_k_s") return DType::Q4_K;
    if (lower == "q5_k_m" || lower == "q5_k_s") return DType::Q5_K;
    if (lower == "q6_k") return DType::Q6_K;
    if (lower == "q3_k_m") return DType::Q3_K;
    if (lower == "q2_k") return DType::Q2_K;
  }
  if (s == "f16" || s == "F16") return DType::F16;
  if (s == "bf16" || s == "BF16") return DType::BF16;
  if (s == "f32" || s == "F32") return DType::F32;
  throw UsageError(
      flag + " expects q8_0, q4_0, " +
      (flag == "--type" ? "q4_k_m, q4_k_s, q5_k_m, q5_k_s, q6_k, q3_k_m, q2_k, " : "") +
      "f16, bf16 or f32, got " + quote_input(s));
}

}  // namespace

int run_convert(int argc, char** argv) {
  std::string in_dir, out_dir;
  ConvertOptions opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kConvertHelp, stdout);
      return 0;
    } else if (a == "-o" || a == "--outdir" || a == "--out") {
      out_dir = flag_value(argc, argv, i);
    } else if (a == "--type" || a == "--outtype") {
      opt.text_type = parse_type(a, flag_value(argc, argv, i), &opt.kquant_small);
    } else if (a == "--vision-type") {
      bool unused = false;
      opt.vision_type = parse_type(a, flag_value(argc, argv, i), &unused);
    } else if (a == "--name") {
      opt.name = flag_value(argc, argv, i);
      if (opt.name.empty() || opt.name.find('/') != std::string::npos) {
        throw UsageError("--name must be a plain file name stem");
      }
    } else if (!a.empty() && a[0] == '-') {
      throw UsageError("unknown option " + quote_input(a));
    } else if (in_dir.empty()) {
      in_dir = a;
    } else {
      throw UsageError("one model folder only (got " + quote_input(in_dir) + " and " +
                       quote_input(a) + ")");
    }
  }
  if (in_dir.empty()) throw UsageError("the Hugging Face model folder is required");
  if (out_dir.empty()) throw UsageError("-o OUT_DIR is required");

  ProgressBar bar("converting", 0);
  bool started = false;
  const ConvertResult r = convert_hf_to_gguf(in_dir, out_dir, opt, [&](size_t done, size_t total) {
    if (!started) {
      bar = ProgressBar("converting", total);
      started = true;
    }
    bar.set(done);
  });
  bar.done();
  std::printf("%s (%zu tensors)\n%s (%zu tensors)\n", r.text_path.c_str(), r.text_tensors,
              r.mmproj_path.c_str(), r.mmproj_tensors);
  return 0;
}

}  // namespace smolvlm::cli
