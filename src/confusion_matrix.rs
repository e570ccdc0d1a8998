//! What an evaluation's predictions say about confusions: the (true, predicted) matrix, its most
//! confused pairs, and a few misclassified images of them. Plain functions on the protocol's data,
//! for the trainer that records them and the dashboard that draws them.

use crate::protocol::Misclassified;

/// Misclassified images kept per evaluation, for the dashboard to draw.
pub const EXAMPLES: usize = 6;

/// The 10x10 matrix of (true, predicted) counts.
pub fn confusion(labels: &[i64], predicted: &[i64]) -> Vec<Vec<u32>> {
    let mut m = vec![vec![0u32; 10]; 10];
    for (&t, &p) in labels.iter().zip(predicted) {
        if let (Some(row), true) = (m.get_mut(t as usize), (0..10).contains(&p)) {
            row[p as usize] += 1;
        }
    }
    m
}

/// The most confused pairs (true, predicted), most frequent first; ties by class order.
pub fn top_pairs(confusion: &[Vec<u32>], k: usize) -> Vec<(usize, usize, u32)> {
    let mut pairs: Vec<(usize, usize, u32)> = confusion
        .iter()
        .enumerate()
        .flat_map(|(t, row)| {
            row.iter().enumerate().filter(move |&(p, &c)| p != t && c > 0).map(move |(p, &c)| (t, p, c))
        })
        .collect();
    pairs.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
    pairs.truncate(k);
    pairs
}

/// Up to `k` misclassified images, the first ones in split order of the most confused pairs,
/// taken round-robin over the top pairs so that several confusions show.
pub fn examples(labels: &[i64], predicted: &[i64], confusion: &[Vec<u32>], k: usize) -> Vec<Misclassified> {
    let pairs = top_pairs(confusion, k.div_ceil(2).max(1));
    let mut by_pair: Vec<Vec<Misclassified>> = vec![Vec::new(); pairs.len()];
    for (i, (&t, &p)) in labels.iter().zip(predicted).enumerate() {
        if let Some(slot) = pairs.iter().position(|&(pt, pp, _)| pt as i64 == t && pp as i64 == p)
            && by_pair[slot].len() < k
        {
            by_pair[slot].push(Misclassified { index: i as u32, label: t as u8, predicted: p as u8 });
        }
    }
    let mut out = Vec::new();
    for round in 0..k {
        for list in &by_pair {
            if out.len() < k
                && let Some(m) = list.get(round)
            {
                out.push(*m);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_counts_true_by_predicted_and_examples_come_from_the_top_pairs() {
        // Class 3 taken for 5 three times, 1 for 7 twice, 0 for 2 once; the rest right.
        let labels = [3, 3, 3, 1, 1, 0, 4, 5, 3, 1];
        let predicted = [5, 5, 5, 7, 7, 2, 4, 5, 3, 1];
        let m = confusion(&labels, &predicted);
        assert_eq!((m[3][5], m[1][7], m[0][2], m[4][4], m[3][3]), (3, 2, 1, 1, 1));
        assert_eq!(m.iter().flatten().sum::<u32>(), 10);
        assert_eq!(top_pairs(&m, 2), vec![(3, 5, 3), (1, 7, 2)]);
        let ex = examples(&labels, &predicted, &m, 4);
        let idx: Vec<u32> = ex.iter().map(|e| e.index).collect();
        assert_eq!(idx, vec![0, 3, 1, 4], "round-robin over the two top pairs");
        assert!(ex.iter().all(|e| e.label != e.predicted));
    }
}
