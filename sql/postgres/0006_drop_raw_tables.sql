-- Raw billing lines and usage samples now live in the columnar store. This
-- migration runs only once `tally migrate` has moved every stored row there
-- (Tally refuses to apply it while either table still holds rows).
DROP TABLE cost_lines;
DROP TABLE usage_samples;
