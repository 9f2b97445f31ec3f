"""Completion-only SFT loss that sends only the supervised positions through the output layer.

Gemma 3's output layer (262k words x 640) costs more than the rest of the 270M model. TRL's SFTTrainer
scores through a fused, tiled LM head, but off Triton devices (CPU) it scores *every* position,
prompt and padding included, and folds each vocabulary tile in a chain of small torch ops. Here the
backbone's hidden states are gathered at the positions whose next token is supervised (the
assistant's answer and its end-of-turn token), and a fused linear cross-entropy projects only those,
in chunks of tokens, computing the gradient of the hidden states in the same pass (as Liger-Kernel's
and cut-cross-entropy's fused linear cross-entropy do), so no full-vocabulary logits are kept for
the backward pass and nothing is recomputed.

:class:`CompletionLossMixin` puts it into TRL's SFTTrainer for single-process runs on CPU with a
frozen output layer (LoRA); everywhere else (Triton GPUs, several processes, a trainable output
layer) TRL's own path runs unchanged.
"""

from __future__ import annotations

import torch

#: Tokens projected at once: chunk x vocabulary float32 logits (256 x 262k = 268 MB for Gemma 3).
CHUNK_TOKENS = 256


class _LinearCrossEntropy(torch.autograd.Function):
    """sum_i CE(softcap(scale * hidden_i @ weight.T), target_i) and the count of top-1 hits; the
    gradient with respect to ``hidden`` is computed chunk by chunk in the forward pass."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk, softcap, scale):
        n = hidden.size(0)
        want_grad = ctx.needs_input_grad[0]
        grad_hidden = torch.empty_like(hidden) if want_grad else None
        loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
        correct = torch.zeros((), dtype=torch.long, device=hidden.device)
        for start in range(0, n, chunk):
            end = min(start + chunk, n)
            h = hidden[start:end]
            y = targets[start:end]
            z = (h @ weight.t()).float()
            if scale != 1.0:
                z = z * scale
            tanh = None
            if softcap:
                tanh = torch.tanh(z / softcap)
                z = tanh * softcap
            target_logit = z.gather(1, y[:, None]).squeeze(1)
            # one pass gives the row maximum and the top-1 token; one exp in place gives both the
            # log-sum-exp and the softmax (torch.logsumexp would run its own exp over a temporary copy)
            top, top_index = z.max(dim=-1)
            correct += (top_index == y).sum()
            total = z.sub_(top[:, None]).exp_().sum(dim=-1)
            loss += (top + total.log() - target_logit).sum()
            if grad_hidden is not None:
                probs = z.div_(total[:, None])  # softmax, in place of the logits
                probs[torch.arange(end - start, device=z.device), y] -= 1.0
                if tanh is not None:
                    probs.mul_(1.0 - tanh * tanh)
                if scale != 1.0:
                    probs.mul_(scale)
                grad_hidden[start:end] = (probs.to(weight.dtype) @ weight).to(hidden.dtype)
        ctx.save_for_backward(grad_hidden if grad_hidden is not None else hidden.new_empty(0))
        ctx.mark_non_differentiable(correct)
        return loss, correct

    @staticmethod
    def backward(ctx, grad_loss, _grad_correct):
        (grad_hidden,) = ctx.saved_tensors
        if grad_hidden.numel() == 0:
            return None, None, None, None, None, None
        return grad_hidden * grad_loss.to(grad_hidden.dtype), None, None, None, None, None


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    softcap: float | None = None,
    scale: float = 1.0,
    chunk: int = CHUNK_TOKENS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of ``hidden`` (N x H) projected by ``weight`` (V x H, frozen) against
    ``targets`` (N), and the number of positions whose most likely token is the target."""
    if weight.requires_grad:
        raise ValueError(
            "linear_cross_entropy computes no gradient for the output layer; freeze it (LoRA) or use TRL's path"
        )
    if torch.is_autocast_enabled(hidden.device.type):
        weight = _cast_once(weight, torch.get_autocast_dtype(hidden.device.type))
    return _LinearCrossEntropy.apply(hidden, weight, targets, chunk, softcap, float(scale))


_CAST: dict = {}


def _cast_once(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The frozen output layer in the autocast dtype, cast once (autocast re-casts frozen weights on
    every call: 168M values per call for Gemma 3), recast when the tensor or its version changes."""
    if weight.dtype == dtype:
        return weight
    key = (weight.data_ptr(), weight._version, dtype)
    cached = _CAST.get("weight")
    if cached is None or cached[0] != key:
        _CAST["weight"] = (key, weight.detach().to(dtype))
    return _CAST["weight"][1]


def completion_loss(causal_lm, inputs: dict, num_items_in_batch=None, chunk: int = CHUNK_TOKENS) -> dict:
    """Mean next-token loss over the supervised positions of a batch (labels != -100), for a causal LM
    whose backbone is ``causal_lm.<base_model_prefix>``; also the supervised and correct token counts."""
    labels = inputs["labels"]
    model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    model_inputs["use_cache"] = False
    backbone = getattr(causal_lm, causal_lm.base_model_prefix)
    hidden = backbone(**model_inputs).last_hidden_state
    shifted = labels[:, 1:]
    mask = shifted != -100
    selected = hidden[:, :-1][mask]
    config = causal_lm.config.get_text_config()
    lm_head = causal_lm.get_output_embeddings()
    total, correct = linear_cross_entropy(
        selected, lm_head.weight, shifted[mask], softcap=getattr(config, "final_logit_softcapping", None), chunk=chunk
    )
    count = mask.sum()
    denominator = count if num_items_in_batch is None else torch.as_tensor(num_items_in_batch, device=total.device)
    return {"loss": total / denominator.clamp(min=1), "tokens": count, "correct": correct}


class CompletionLossMixin:
    """For TRL's SFTTrainer: the completion-only loss above where it pays (see the module docstring)."""

    def _use_completion_loss(self, model) -> bool:
        from trl.kernels.chunked_logprob import _use_triton

        if self.args.world_size > 1 or getattr(self, "aux_loss_enabled", False):
            return False
        causal_lm = _causal_lm(self.accelerator.unwrap_model(model))
        head = causal_lm.get_output_embeddings()
        if head is None or head.weight.requires_grad or getattr(head, "bias", None) is not None:
            return False
        scale = getattr(causal_lm.config.get_text_config(), "logit_scale", None)
        return not _use_triton(head.weight.device) and scale in (None, 1, 1.0)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs or not self._use_completion_loss(model):
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        mode = "train" if self.model.training else "eval"
        causal_lm = _causal_lm(self.accelerator.unwrap_model(model))
        with self.accelerator.autocast():  # accelerate autocasts the wrapped forward, which this path goes around
            result = completion_loss(causal_lm, dict(inputs), num_items_in_batch)
        tokens = int(result["tokens"])
        self._metrics[mode]["mean_token_accuracy"].append(int(result["correct"]) / tokens if tokens else 0.0)
        if mode == "train":
            if "attention_mask" in inputs:
                self._total_train_tokens += int(inputs["attention_mask"].sum())
            else:
                self._total_train_tokens += int(inputs["position_ids"].size(1))
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return result["loss"]


def _causal_lm(model):
    """The causal LM under a PEFT wrapper (its LoRA layers are injected in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def frozen_linears_to(model, dtype) -> int:
    """Store the frozen ``nn.Linear`` weights in ``dtype``, once (not LoRA's, embeddings, tied output layers, norms).

    Under CPU autocast every matmul casts its fp32 weight to bfloat16 again, forward and backward
    (autocast caches only weights that require gradients): a third of a Gemma 3 SFT step is those
    copies. The matmuls see the very same bfloat16 values either way. Returns the number of weights cast.
    """
    cast = 0
    # an output layer tied to the input embedding shares its weight: left alone, the embeddings stay fp32
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear) or id(module.weight) in embeddings:
            continue
        if not module.weight.requires_grad and module.weight.dtype != dtype:
            module.weight.data = module.weight.data.to(dtype)
            if module.bias is not None and not module.bias.requires_grad:
                module.bias.data = module.bias.data.to(dtype)
            cast += 1
    return cast
