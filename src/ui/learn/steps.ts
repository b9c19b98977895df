/**
 * The Learn mode lesson, as data: one entry per step, in order. A teacher can reorder, cut or add
 * steps here without touching a component. Each step has a title, two or three sentences, one
 * live control, the chart that answers it, a "try it" prompt, the preset the step opens with
 * (URL parameters: a link to a step with other values opens it with those), and optionally a
 * question the learner answers before the chart is revealed.
 *
 * Distribution ids are the demo's: prose, email, code, arithmetic (public/demo/manifest.json).
 * No number measured by a model belongs here: every perplexity on screen is measured live; the
 * charts state what they found in their own words.
 *
 * URL parameters a step reads (all optional; the preset fills the rest):
 *   model   intro: 'base' or a distribution id          v      the distribution vector in play
 *   w       its weight ω                                 colour heat map: 'mean' or a distribution
 *   values  sweep / heat map / grid weights, "0,0.5,1"  budget optimiser: most merges to try
 *   dem     mixing step: 'best' (the demo's grid best), 'ones' (every ω = 1) or 'search' (your search's best)
 *   prompt  generation: a distribution id (its prompt)   guess, reveal   the prediction
 */

export type ControlSpec =
  | { kind: 'model'; label: string }
  | { kind: 'vector'; label: string }
  | { kind: 'weight'; label: string; min: number; max: number; step: number }
  | { kind: 'colour'; label: string }
  | { kind: 'budget'; label: string; min: number; max: number }
  | { kind: 'dem'; label: string }
  | { kind: 'prompt'; label: string };

export type ChartSpec =
  /** Perplexity of one model (param `model`) on each validation text, the base marked. */
  | { kind: 'models' }
  /** ‖Δ‖ per layer of each fine-tune, normalised per model (DEM's Figure 3), and relative to the base's weights. */
  | { kind: 'layers' }
  /** Base vs the merge θ + ω·Δ_v (params v, w), per text, with the change. */
  | { kind: 'change' }
  /** Each text's perplexity as ω of vector v runs over `values`; ω = 0 and 1 are the base and the fine-tune themselves. */
  | { kind: 'scale'; values: number[] }
  /** Mean (or one text's) perplexity over a grid of ω for two vectors, the others at 0. */
  | { kind: 'heatmap'; x: string; y: string; values: number[] }
  /** A grid over every vector (each ω in `values`), then Nelder–Mead from its best; evaluations counted. */
  | { kind: 'search'; values: number[]; budget: number }
  /** Base, data mixing and a DEM merge per text, with each approach's training cost from the manifest. */
  | { kind: 'mixing' }
  /**
   * One prompt (the demo's prompt for a distribution) continued by three models side by side,
   * sampled as the demo's manifest samples (temperature, top-k, seed), `maxTokens` tokens.
   */
  | { kind: 'generations'; models: GenerationModel[]; maxTokens: number };

/** A model in the generation step: the base, the prompt's own fine-tune, the demo's best DEM merge, or data mixing. */
export type GenerationModel = 'base' | 'vector' | 'best' | 'mixing';

export interface Prediction {
  question: string;
  /** 'distributions': one choice per validation text; or fixed choices. */
  choices: 'distributions' | { id: string; label: string }[];
  /** How the answer is read from the measured data (never written down here). */
  answer: 'largest-drop' | 'largest-rise' | 'beyond-one' | 'winner';
}

export interface LearnStep {
  /** The URL's step name: #/learn/<id>. */
  id: string;
  title: string;
  /** Two or three sentences; `ω`, `Δ` and `θ` are fine. */
  body: string[];
  tryIt: string;
  control: ControlSpec;
  chart: ChartSpec;
  /** URL parameters the step opens with. */
  preset: Record<string, string>;
  predict?: Prediction;
}

export const STEPS: LearnStep[] = [
  {
    id: 'welcome',
    title: 'A base model and four fine-tunes',
    body: [
      'This lesson uses a small language model — the base — and four copies of it, each trained a little further on one kind of text: prose from Moby-Dick, e-mail, Python code and arithmetic.',
      'Perplexity measures how surprised a model is by text it has never seen: lower is better. Every number in this lesson is measured live, in your browser, on held-out text that no model trained on.',
    ],
    tryIt: 'Pick the code fine-tune: which text got easier than for the base, and which got harder?',
    control: { kind: 'model', label: 'Model' },
    chart: { kind: 'models' },
    preset: { model: 'prose' },
  },
  {
    id: 'delta',
    title: 'What a fine-tune changes',
    body: [
      'Subtract the base’s weights from a fine-tune’s and you get its distribution vector: Δ = θ(fine-tune) − θ(base), one number per weight.',
      'The chart shows how long Δ is in each layer, divided by the model’s largest layer (the DEM paper’s Figure 3), and how large that is next to the weights themselves.',
    ],
    tryIt: 'Which layers moved most for arithmetic? Is it the same for prose? And how much of the model moved at all?',
    control: { kind: 'vector', label: 'Fine-tune' },
    chart: { kind: 'layers' },
    preset: { v: 'arithmetic' },
  },
  {
    id: 'add',
    title: 'Adding one vector',
    body: [
      'A merge starts from the base and adds vectors: θ = θ(base) + ω·Δ. With one vector at ω = 1 you get that fine-tune back.',
      'Watch all four texts, not just the vector’s own: one improves a lot, the others move much less — some even get worse.',
    ],
    tryIt: 'Try the arithmetic vector. Does learning arithmetic help with e-mail?',
    control: { kind: 'vector', label: 'Add the vector of' },
    chart: { kind: 'change' },
    preset: { v: 'prose', w: '1' },
    predict: { question: 'Adding the prose vector: which text’s perplexity will drop the most?', choices: 'distributions', answer: 'largest-drop' },
  },
  {
    id: 'scale',
    title: 'Scaling a vector: 0 → 1 → 2',
    body: [
      'ω need not be 1. At ω = 0 you have the base, at ω = 1 the fine-tune, and beyond 1 you keep going in the same direction — further than training went.',
      'The curve shows each text as ω runs from 0 to 2. Where the vector’s own text is lowest is the best scale; past it, the model overshoots.',
    ],
    tryIt: 'Drag ω beyond the lowest point of the prose curve. What happens to the other three texts on the way?',
    control: { kind: 'weight', label: 'ω (prose)', min: 0, max: 2, step: 0.25 },
    chart: { kind: 'scale', values: [0, 0.5, 1, 1.5, 2] },
    preset: { v: 'prose', w: '1' },
    predict: {
      question: 'At ω = 2 (twice the fine-tune), will the prose text be easier or harder than at ω = 1?',
      choices: [
        { id: 'easier', label: 'easier' },
        { id: 'harder', label: 'harder' },
      ],
      answer: 'beyond-one',
    },
  },
  {
    id: 'negate',
    title: 'Negating a vector: forgetting',
    body: [
      'A negative ω subtracts what the fine-tune learned: θ(base) − Δ. Task arithmetic uses this to make a model forget one thing while leaving the rest mostly alone.',
    ],
    tryIt: 'Find an ω where code is clearly worse but prose and e-mail have barely moved.',
    control: { kind: 'weight', label: 'ω (code)', min: -1, max: 0, step: 0.25 },
    chart: { kind: 'change' },
    preset: { v: 'code', w: '-1' },
    predict: { question: 'Subtracting the code vector: which text will get the hardest?', choices: 'distributions', answer: 'largest-rise' },
  },
  {
    id: 'two',
    title: 'Two vectors at once',
    body: [
      'Add two vectors and they interfere: both were learned from the same base, and neither knew about the other. Vectors add up well only while each one is a small step for a base that already knows the basics.',
      'The heat map shows the mean perplexity of the four texts for each pair of weights, the other two vectors at 0. The best cell is outlined — it need not be (1, 1).',
    ],
    tryIt: 'Colour the map by the code text alone, then by prose: where does each one want the other vector?',
    control: { kind: 'colour', label: 'Colour by' },
    chart: { kind: 'heatmap', x: 'prose', y: 'code', values: [0, 0.5, 1] },
    preset: { colour: 'mean' },
  },
  {
    id: 'search',
    title: 'Choosing weights by validation perplexity',
    body: [
      'DEM picks the weights by measuring: merge, measure perplexity on validation text from every distribution, keep the best. A merge is arithmetic on weights, not training, so trying many is cheap.',
      'A grid tries every combination of a few values; an optimiser (Nelder–Mead) then walks downhill from the grid’s best and counts every merge it needs.',
    ],
    tryIt: 'How many merges did the optimiser need to beat the grid? Give it a smaller budget and compare.',
    control: { kind: 'budget', label: 'Optimiser budget (merges)', min: 2, max: 40 },
    chart: { kind: 'search', values: [0.5, 1], budget: 12 },
    preset: {},
  },
  {
    id: 'mixing',
    title: 'DEM versus data mixing',
    body: [
      'The usual alternative is data mixing: train one model on all four texts together. Each mixing ratio you want to try is a new training run; DEM trains each fine-tune once and tries weights for the cost of measuring.',
      'DEM works when the base is good enough that each fine-tune is a small, gentle step from it; fine-tune a weak base hard and the vectors stop adding up, and mixing wins. Here is how both did on this demo, measured now, and what each cost to train.',
    ],
    tryIt: 'Compare text by text: where does DEM win, and where does mixing?',
    control: { kind: 'dem', label: 'DEM merge' },
    chart: { kind: 'mixing' },
    preset: { dem: 'best' },
    predict: {
      question: 'Which has the lower mean perplexity on these four texts?',
      choices: [
        { id: 'dem', label: 'the DEM merge' },
        { id: 'mixing', label: 'data mixing' },
      ],
      answer: 'winner',
    },
  },
  {
    id: 'generate',
    title: 'Hearing the difference',
    body: [
      'Perplexity is a number; generation lets you read what a model learned. The same prompt is continued by three models with the same random seed, so the only difference is the weights.',
    ],
    tryIt: 'Pick the code prompt: which model writes something that looks like Python?',
    control: { kind: 'prompt', label: 'Prompt' },
    chart: { kind: 'generations', models: ['base', 'vector', 'best'], maxTokens: 40 },
    preset: { prompt: 'prose' },
  },
];
