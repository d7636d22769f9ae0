-- The outside address a Service Desk mail went to (a ticket's customer or a person copied in),
-- so that its unsubscribe (by mail to the key's -unsubscribe address, or its one-click link)
-- removes that address from the ticket's email participants: the recipient of such a
-- notification is the Support Bot, whose own subscription means nothing. NULL for mail to
-- members, and for Service Desk mail sent before this column. Same text on both backends.
ALTER TABLE sent_notifications ADD COLUMN participant_email TEXT;
