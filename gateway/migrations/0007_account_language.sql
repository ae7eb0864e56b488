-- The language a template is sent in when neither the send nor the contact names one that the
-- template has (templates_catalog.languages.pick_language's last resort).
ALTER TABLE accounts ADD COLUMN default_language text;
