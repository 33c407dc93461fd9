// The trivial task of the piscina peer (bench/peers/piscina_pool.mjs): x*x.
export default function square(x) {
  return x * x;
}
