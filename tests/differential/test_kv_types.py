"""The KV cache types: --kv-type q8_0 and f32 give logits close to llama.cpp's (which the oracle
runs with an F16 cache) on every position of the F16 fixtures. An F32 cache must stay within the
F16 tolerance (1e-2). A Q8_0 cache rounds every K and V element to 8 bits (per 32), an error the
reference does not make, so its budget is 0.1 (measured: 4-6e-2)."""
import os

from harness import FIXTURES, Checker, hearth_logits, load_ref, oracle_logits


def main():
    c = Checker("kv-types")
    for name in ("llama-F16", "qwen2-F16", "qwen3-F16"):
        model = os.path.join(FIXTURES, name + ".gguf")
        prompt = load_ref(os.path.join(FIXTURES, name + ".ref.json"))["prompt_tokens"]
        ref = oracle_logits(model, prompt, all_positions=True)
        for kv, tol in (("q8_0", 0.1), ("f32", 1e-2)):
            ours = hearth_logits(model, prompt, all_positions=True, extra=("--kv-type", kv))
            d = c.compare_rows(f"{name} kv {kv}", ours, ref, tol)
            print(f"{name:10s} --kv-type {kv:5s} max|diff| {d:.2e} (tol {tol})", flush=True)
    c.finish()


if __name__ == "__main__":
    main()
