# The demo model's recipe, shared by scripts/train-demo (which trains it) and
# scripts/bench-finetune (which times `hearth train` on the same shape and data): source it after
# tools/train/demo/prepare.py has written $work. Bash arrays for `hearth train`.
demo_data_args=(
  --tokenizer ../shared/fixtures/qwen2-F16.gguf --chat-template tools/train/demo/chatml.jinja
  --text "$work/text.txt" --chat "$work/chat-gen.jsonl" --chat tools/train/demo/chat.jsonl
  --chat-repeat 4 --eval-every-doc 50
)
demo_shape_args=(--layers 6 --embd 512 --heads 8 --kv-heads 2 --ff 1280 --ctx 512)
demo_batch_args=(--seqs 4 --tokens 512 --lr 1.5e-3 --warmup 100)
