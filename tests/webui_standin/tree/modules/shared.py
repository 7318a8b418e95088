# Stand-in for text-generation-webui's modules/shared.py (tests only): the argument parser of commit 8466cf2.
import argparse

parser = argparse.ArgumentParser(formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=54))

# Basic settings
parser.add_argument('--notebook', action='store_true')
parser.add_argument('--chat', action='store_true', help='DEPRECATED: chat mode is now the default.')
parser.add_argument('--multi-user', action='store_true')
parser.add_argument('--character', type=str)
parser.add_argument('--model', type=str)
parser.add_argument('--lora', type=str, nargs="+")
parser.add_argument("--model-dir", type=str, default='models/')
parser.add_argument("--lora-dir", type=str, default='loras/')
parser.add_argument('--model-menu', action='store_true')
parser.add_argument('--no-stream', action='store_true')
parser.add_argument('--settings', type=str)
parser.add_argument('--extensions', type=str, nargs="+")
parser.add_argument('--verbose', action='store_true')

# Model loader
parser.add_argument('--loader', type=str)

# Accelerate/transformers
parser.add_argument('--cpu', action='store_true')
parser.add_argument('--auto-devices', action='store_true')
parser.add_argument('--gpu-memory', type=str, nargs="+")
parser.add_argument('--cpu-memory', type=str)
parser.add_argument('--disk', action='store_true')
parser.add_argument('--load-in-8bit', action='store_true')
parser.add_argument('--bf16', action='store_true')
parser.add_argument('--no-cache', action='store_true')
parser.add_argument('--xformers', action='store_true')
parser.add_argument('--sdp-attention', action='store_true')
parser.add_argument('--trust-remote-code', action='store_true')
parser.add_argument('--load-in-4bit', action='store_true')
parser.add_argument('--compute_dtype', type=str, default="float16")
parser.add_argument('--quant_type', type=str, default="nf4")
parser.add_argument('--use_double_quant', action='store_true')

# llama.cpp
parser.add_argument('--threads', type=int, default=0)
parser.add_argument('--n_ctx', type=int, default=2048)
parser.add_argument('--n-gpu-layers', type=int, default=0)

# AutoGPTQ
parser.add_argument('--triton', action='store_true')
parser.add_argument('--no_inject_fused_attention', action='store_true')
parser.add_argument('--no_inject_fused_mlp', action='store_true')
parser.add_argument('--no_use_cuda_fp16', action='store_true')
parser.add_argument('--desc_act', action='store_true')
parser.add_argument('--disable_exllama', action='store_true')

# GPTQ-for-LLaMa
parser.add_argument('--wbits', type=int, default=0)
parser.add_argument('--model_type', type=str)
parser.add_argument('--groupsize', type=int, default=-1)
parser.add_argument('--pre_layer', type=int, nargs="+")
parser.add_argument('--checkpoint', type=str)
parser.add_argument('--monkey-patch', action='store_true')

# ExLlama
parser.add_argument('--gpu-split', type=str)
parser.add_argument('--max_seq_len', type=int, default=2048)
parser.add_argument('--cfg-cache', action='store_true')

# Gradio
parser.add_argument('--listen', action='store_true')
parser.add_argument('--listen-host', type=str)
parser.add_argument('--listen-port', type=int)
parser.add_argument('--share', action='store_true')
parser.add_argument('--auto-launch', action='store_true', default=False)
parser.add_argument("--gradio-auth", type=str, default=None)
parser.add_argument("--gradio-auth-path", type=str, default=None)
parser.add_argument("--ssl-keyfile", type=str, default=None)
parser.add_argument("--ssl-certfile", type=str, default=None)

# API
parser.add_argument('--api', action='store_true')
parser.add_argument('--api-blocking-port', type=int, default=5000)
parser.add_argument('--api-streaming-port', type=int, default=5005)
parser.add_argument('--public-api', action='store_true')
parser.add_argument('--public-api-id', type=str, default=None)
