// Declared internal interface for `smolvlm bench` (apps/smolvlm/bench.cpp), the one app that
// times the stages of an answer one by one (load, vision, prefill, decode) and so needs more than
// the public API gives: the loaded Model, a compute context, a Sequence and the steps of the prompt
// route (encode_picture, render_prompt), so each is timed as `ask` runs it. Not a public API: it
// changes with the engine, and other apps use include/smolvlm/ only.
#pragma once

#include "chat/conversation_prompt.h"
#include "chat/sequence.h"
#include "kernels/compute.h"
#include "kernels/kernels.h"
#include "kernels/op_profile.h"
#include "loader/model.h"
#include "text/sampler.h"
#include "util/process_memory.h"
