//! The decoder itself, for the GGUF architectures this provider runs: `llama` (SmolLM2, Llama) and
//! `qwen2` (Qwen2.5). The same computation as candle-transformers' `quantized_llama` and
//! `quantized_qwen2` (candle's quantized matmuls, norms and rotary embeddings), with the KV cache and
//! the attention of one new token done here.
//!
//! Why not candle's models: their attention multiplies small f32 matrices through candle's general
//! `matmul`, which asks `candle_core::utils::get_num_threads()` for its parallelism on every call;
//! without `RAYON_NUM_THREADS` in the environment that parses `/proc/cpuinfo` each time (num_cpus does
//! not cache it) — two calls per layer per token, 60 per token for SmolLM2-135M: measured 7–13 % of
//! the generation rate on a lightly loaded machine, more when the machine is busy (each parse is a
//! few syscalls while candle's matmul pool spins). This crate cannot set the variable
//! (`std::env::set_var` is `unsafe` in edition 2024, and racy in a threaded process).
//! Here a generated token's attention is a few plain loops over our own cache (no `matmul`, no
//! growing `Tensor::cat` copies); the prompt still goes through candle's `matmul` (once per answer).

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

/// The longest context this provider uses, whatever the file says: the prompt's attention scores
/// (heads × prompt²) are computed at once, and at 4096 tokens that is already ~0.6–1 GB.
pub(crate) const MAX_CONTEXT: usize = 4096;

/// A loaded decoder with its KV cache.
pub(crate) struct Transformer {
    embeddings: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    rope: Rope,
    /// Positions the cache holds.
    cached: usize,
    /// The context window: the file's, at most [`MAX_CONTEXT`].
    pub(crate) context: usize,
}

/// Rotary position embeddings: the tables for every position, and the pairing convention.
struct Rope {
    cos: Tensor,
    sin: Tensor,
    /// Qwen pairs dimension i with i + d/2 (NeoX); llama pairs 2i with 2i + 1, as llama.cpp does.
    neox: bool,
}

impl Rope {
    fn apply(&self, x: &Tensor, position: usize) -> Result<Tensor> {
        let (_, _, len, _) = x.dims4()?;
        let cos = self.cos.narrow(0, position, len)?;
        let sin = self.sin.narrow(0, position, len)?;
        if self.neox {
            candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)
        } else {
            candle_nn::rotary_emb::rope_i(&x.contiguous()?, &cos, &sin)
        }
    }
}

struct Layer {
    attention_norm: RmsNorm,
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    /// q, k and v biases (qwen2 has them, llama not).
    biases: Option<[Tensor; 3]>,
    wo: QMatMul,
    ffn_norm: RmsNorm,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    /// Keys of every cached position, `[position][kv head][head_dim]`.
    keys: Vec<f32>,
    /// Values, laid out as the keys.
    values: Vec<f32>,
}

/// The hyper-parameters under `<architecture>.` in the metadata.
struct Shape {
    heads: usize,
    kv_heads: usize,
    embedding: usize,
    blocks: usize,
    eps: f64,
    rope_base: f32,
    context: usize,
}

impl Shape {
    fn read(content: &Content, arch: &str) -> Result<Self> {
        let get = |key: &str| {
            let key = format!("{arch}.{key}");
            content
                .metadata
                .get(&key)
                .ok_or_else(|| candle_core::Error::Msg(format!("the file has no `{key}`")))
        };
        let number = |key: &str| get(key).and_then(Value::to_u32).map(|n| n as usize);
        Ok(Self {
            heads: number("attention.head_count")?,
            kv_heads: number("attention.head_count_kv")?,
            embedding: number("embedding_length")?,
            blocks: number("block_count")?,
            eps: f64::from(get("attention.layer_norm_rms_epsilon")?.to_f32()?),
            rope_base: get("rope.freq_base")
                .and_then(Value::to_f32)
                .unwrap_or(10_000.0),
            context: number("context_length")?.min(MAX_CONTEXT),
        })
    }
}

impl Transformer {
    /// Reads the weights of a `llama` or `qwen2` file (`arch`).
    ///
    /// # Errors
    /// When a tensor or a hyper-parameter the architecture needs is missing or malformed.
    pub(crate) fn from_gguf<R: std::io::Seek + std::io::Read>(
        content: &Content,
        reader: &mut R,
        arch: &str,
    ) -> Result<Self> {
        let device = Device::Cpu;
        let shape = Shape::read(content, arch)?;
        let head_dim = shape.embedding / shape.heads;
        let mut tensor = |name: &str| content.tensor(reader, name, &device);
        let embeddings_q = tensor("token_embd.weight")?;
        let embeddings = embeddings_q.dequantize(&device)?;
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, shape.eps)?;
        // Without its own output matrix the model reuses the embeddings (tied, as Qwen2.5-0.5B).
        let output = QMatMul::from_qtensor(tensor("output.weight").unwrap_or(embeddings_q))?;
        let mut layers = Vec::with_capacity(shape.blocks);
        for block in 0..shape.blocks {
            layers.push(Layer::read(&mut tensor, block, &shape, head_dim)?);
        }
        let (cos, sin) = rope_tables(head_dim, shape.rope_base, shape.context)?;
        Ok(Self {
            embeddings,
            layers,
            norm,
            output,
            rope: Rope {
                cos,
                sin,
                neox: arch == "qwen2",
            },
            cached: 0,
            context: shape.context,
        })
    }

    /// Forgets every cached position: the next [`forward`](Self::forward) starts a new text.
    pub(crate) fn clear(&mut self) {
        self.cached = 0;
        for layer in &mut self.layers {
            layer.keys.clear();
            layer.values.clear();
        }
    }

    /// Runs `tokens`, which follow the cached positions, and returns the logits for the next token.
    ///
    /// # Errors
    /// When the computation fails or the tokens do not fit the context window.
    pub(crate) fn forward(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let position = self.cached;
        if position + tokens.len() > self.context {
            candle_core::bail!(
                "{} positions exceed the context window",
                position + tokens.len()
            );
        }
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self.embeddings.index_select(&ids, 0)?.unsqueeze(0)?;
        for layer in &mut self.layers {
            let attended =
                layer.attend(&layer.attention_norm.forward(&x)?, &self.rope, position)?;
            x = (attended + x)?;
            let h = layer.ffn_norm.forward(&x)?;
            let mlp = layer.down.forward(
                &(candle_nn::ops::silu(&layer.gate.forward(&h)?)? * layer.up.forward(&h)?)?,
            )?;
            x = (mlp + x)?;
        }
        self.cached += tokens.len();
        let last = self.norm.forward(&x)?.i((.., tokens.len() - 1, ..))?;
        self.output.forward(&last)?.squeeze(0)?.to_dtype(DType::F32)
    }
}

impl Layer {
    fn read(
        tensor: &mut impl FnMut(&str) -> Result<QTensor>,
        block: usize,
        shape: &Shape,
        head_dim: usize,
    ) -> Result<Self> {
        let mut get = |name: &str| tensor(&format!("blk.{block}.{name}"));
        let mut matmul = |name: &str| QMatMul::from_qtensor(get(name)?);
        let (wq, wk, wv, wo) = (
            matmul("attn_q.weight")?,
            matmul("attn_k.weight")?,
            matmul("attn_v.weight")?,
            matmul("attn_output.weight")?,
        );
        let (gate, up, down) = (
            matmul("ffn_gate.weight")?,
            matmul("ffn_up.weight")?,
            matmul("ffn_down.weight")?,
        );
        let mut bias = |name: &str| get(name).and_then(|b| b.dequantize(&Device::Cpu));
        let biases = match bias("attn_q.bias") {
            Ok(q) => Some([q, bias("attn_k.bias")?, bias("attn_v.bias")?]),
            Err(_) => None,
        };
        Ok(Self {
            attention_norm: RmsNorm::from_qtensor(get("attn_norm.weight")?, shape.eps)?,
            ffn_norm: RmsNorm::from_qtensor(get("ffn_norm.weight")?, shape.eps)?,
            wq,
            wk,
            wv,
            biases,
            wo,
            gate,
            up,
            down,
            heads: shape.heads,
            kv_heads: shape.kv_heads,
            head_dim,
            keys: Vec::new(),
            values: Vec::new(),
        })
    }

    /// Self-attention of `x` (`[1, len, embedding]`, normalised) at `position`, caching its keys and
    /// values.
    fn attend(&mut self, x: &Tensor, rope: &Rope, position: usize) -> Result<Tensor> {
        let (_, len, _) = x.dims3()?;
        let (mut q, mut k, mut v) = (
            self.wq.forward(x)?,
            self.wk.forward(x)?,
            self.wv.forward(x)?,
        );
        if let Some([bq, bk, bv]) = &self.biases {
            q = q.broadcast_add(bq)?;
            k = k.broadcast_add(bk)?;
            v = v.broadcast_add(bv)?;
        }
        let heads = |t: Tensor, n: usize| -> Result<Tensor> {
            t.reshape((1, len, n, self.head_dim))?.transpose(1, 2)
        };
        // [1, heads, len, head_dim] after the rotation.
        let q = rope.apply(&heads(q, self.heads)?, position)?;
        let k = rope.apply(&heads(k, self.kv_heads)?, position)?;
        // Back to [len, kv head, head_dim] rows for the cache.
        let k = k.transpose(1, 2)?.flatten_all()?.to_vec1::<f32>()?;
        self.keys.extend_from_slice(&k);
        self.values
            .extend_from_slice(&v.flatten_all()?.to_vec1::<f32>()?);
        let out = if len == 1 {
            let q = q.flatten_all()?.to_vec1::<f32>()?;
            Tensor::from_vec(
                self.attend_one(&q),
                (1, 1, self.heads * self.head_dim),
                &Device::Cpu,
            )?
        } else {
            self.attend_prompt(&q, position, len)?
        };
        self.wo.forward(&out)
    }

    /// One new token's attention over every cached position, `q` as `[head][head_dim]`.
    fn attend_one(&self, q: &[f32]) -> Vec<f32> {
        let d = self.head_dim;
        let positions = self.keys.len() / (self.kv_heads * d);
        let group = self.heads / self.kv_heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut out = vec![0.0; self.heads * d];
        let mut weights = vec![0.0; positions];
        for (head, out) in out.chunks_exact_mut(d).enumerate() {
            let query = &q[head * d..(head + 1) * d];
            let kv = head / group;
            let row = |t: usize| (t * self.kv_heads + kv) * d;
            for (t, w) in weights.iter_mut().enumerate() {
                *w = dot(query, &self.keys[row(t)..row(t) + d]) * scale;
            }
            softmax(&mut weights);
            for (t, w) in weights.iter().enumerate() {
                for (o, v) in out.iter_mut().zip(&self.values[row(t)..row(t) + d]) {
                    *o += w * v;
                }
            }
        }
        out
    }

    /// The prompt's causal attention (`q`: `[1, heads, len, head_dim]`) with candle's `matmul`.
    fn attend_prompt(&self, q: &Tensor, position: usize, len: usize) -> Result<Tensor> {
        let d = self.head_dim;
        let positions = position + len;
        let group = self.heads / self.kv_heads;
        // The cache as [heads, positions, head_dim], each kv head shared by `group` query heads.
        let expand = |rows: &[f32]| -> Result<Tensor> {
            Tensor::from_slice(rows, (positions, self.kv_heads, 1, d), &Device::Cpu)?
                .broadcast_as((positions, self.kv_heads, group, d))?
                .reshape((positions, self.heads, d))?
                .transpose(0, 1)?
                .contiguous()
        };
        let (k, v) = (expand(&self.keys)?, expand(&self.values)?);
        let q = q.squeeze(0)?.contiguous()?;
        let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?;
        // Query i (at position + i) sees positions up to its own.
        let mask: Vec<f32> = (0..len)
            .flat_map(|i| {
                (0..positions).map(move |t| {
                    if t > position + i {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (1, len, positions), &Device::Cpu)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask)?)?;
        weights
            .matmul(&v)?
            .transpose(0, 1)?
            .reshape((1, len, self.heads * d))
    }
}

/// The cos and sin tables: `[positions, head_dim / 2]`.
fn rope_tables(head_dim: usize, base: f32, positions: usize) -> Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let mut cos = Vec::with_capacity(positions * half);
    let mut sin = Vec::with_capacity(positions * half);
    for position in 0..positions {
        for i in 0..half {
            let theta = 1.0 / base.powf((2 * i) as f32 / head_dim as f32);
            let angle = position as f32 * theta;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    let device = Device::Cpu;
    Ok((
        Tensor::from_vec(cos, (positions, half), &device)?,
        Tensor::from_vec(sin, (positions, half), &device)?,
    ))
}

/// A dot product in eight lanes, so that the compiler keeps it in vector registers.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a8, a_tail) = a.as_chunks::<8>();
    let (b8, b_tail) = b.as_chunks::<8>();
    let mut lanes = [0.0f32; 8];
    for (x, y) in a8.iter().zip(b8) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

fn softmax(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in values.iter_mut() {
        *v /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_softmax_compute_what_they_say() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b = vec![2.0; 19];
        assert_eq!(dot(&a, &b), 2.0 * (0..19).sum::<i32>() as f32);
        let mut w = [0.0, 0.0, 2.0f32.ln()];
        softmax(&mut w);
        for (got, want) in w.iter().zip([0.25, 0.25, 0.5]) {
            assert!((got - want).abs() < 1e-6, "{w:?}");
        }
    }
}
