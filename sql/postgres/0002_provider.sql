-- The provider of a line when it is not AWS (FOCUS exports can hold several clouds).
ALTER TABLE cost_lines ADD COLUMN provider TEXT;
