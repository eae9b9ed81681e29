// Pressure to depth in sea water: UNESCO 1983 (Fofonoff and Millard, Algorithms for computation of
// fundamental properties of seawater, UNESCO technical papers in marine science 44), after
// Saunders and Fofonoff (1976). Standard ocean (0 deg C, salinity 35); good to about 0.1 m.

/** Depth in metres from pressure in decibars (gauge, 0 at the surface) at a latitude in degrees. */
export function depthFromPressure(pressureDbar: number, latitudeDeg: number): number {
  const p = pressureDbar;
  const x = Math.sin((latitudeDeg * Math.PI) / 180) ** 2;
  const gravity = 9.780318 * (1 + (5.2788e-3 + 2.36e-5 * x) * x) + 1.092e-6 * p;
  return ((((-1.82e-15 * p + 2.279e-10) * p - 2.2512e-5) * p + 9.72659) * p) / gravity;
}
