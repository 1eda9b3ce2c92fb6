package erasure

// solve returns the padded message (k·size bytes) from the k distinct
// chunks held. Data chunks are copied into place. For the m missing data
// chunks, each of the m parity chunks held gives one equation
//
//	parity_p - sum over known i of coef(p, i)·data_i = sum over missing l of coef(p, l)·data_l
//
// whose matrix is the m×m Cauchy submatrix coef(parity points, missing
// points): invertible, so Gaussian elimination on [A | R] always succeeds.
// Cost: m·(k-m)·size for the right-hand sides and m²·(m+size) for the
// elimination, both O(k³)-bounded; with k = 37 and size 32 at most about
// 10^5 multiplications.
func (d *Decoder) solve() []byte {
	out := make([]byte, d.k*d.size)
	var parity []int // indexes into points of the parity chunks
	for j, p := range d.points {
		if int(p) < d.k {
			copy(out[int(p)*d.size:], d.chunk(j))
		} else {
			parity = append(parity, j)
		}
	}
	if len(parity) == 0 {
		return out
	}
	missing := make([]int, 0, len(parity))
	for i := range d.k {
		if !d.has(uint8(i)) {
			missing = append(missing, i)
		}
	}
	m, w := len(missing), len(missing)+d.size
	rows := make([]byte, m*w) // row r: A[r][0..m) || R[r][0..size)
	for r, j := range parity {
		p := int(d.points[j])
		row := rows[r*w : (r+1)*w]
		for l, i := range missing {
			row[l] = coef(p, i)
		}
		rhs := row[m:]
		copy(rhs, d.chunk(j))
		for i := range d.k {
			if d.has(uint8(i)) {
				mulAdd(rhs, out[i*d.size:(i+1)*d.size], coef(p, i))
			}
		}
	}
	eliminate(rows, m, w)
	for r, i := range missing {
		copy(out[i*d.size:], rows[r*w+m:(r+1)*w])
	}
	return out
}

// eliminate runs Gauss-Jordan elimination on the m rows of width w of
// [A | R], leaving [I | A^-1·R]. A must be invertible; a Cauchy matrix is,
// so a zero pivot column is a bug in this package and panics.
func eliminate(rows []byte, m, w int) {
	row := func(r int) []byte { return rows[r*w : (r+1)*w] }
	for c := range m {
		piv := c
		for piv < m && rows[piv*w+c] == 0 {
			piv++
		}
		if piv == m {
			panic("erasure: singular Cauchy submatrix")
		}
		if piv != c {
			swap(row(c), row(piv))
		}
		pr := row(c)
		scale(pr[c:], inv(pr[c]))
		for r := range m {
			if f := rows[r*w+c]; r != c && f != 0 {
				mulAdd(row(r)[c:], pr[c:], f)
			}
		}
	}
}

func swap(a, b []byte) {
	for i := range a {
		a[i], b[i] = b[i], a[i]
	}
}
