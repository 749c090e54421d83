#!/usr/bin/perl
# Builds tests/bounce/corpus-set-of-emails.tsv from sisimai/set-of-emails (BSD-2-Clause):
# one row per bounced recipient that Sisimai parses out of the real bounce messages in
# maildir/bsd, with the reply the remote gave as one line. Run where the repository is
# checked out; the corpus file is what the tests read.
#
#   perl tests/bounce/extract-set-of-emails.pl COMMIT /path/to/set-of-emails/maildir/bsd/*.eml
#
# Columns: source, recipient domain, Sisimai's reason for the whole message (make), reply.
use strict;
use warnings;
use Sisimai;
my $commit = shift @ARGV or die "usage: $0 COMMIT FILE...\n";
my %seen;
print "# source\tdomain\tsisimai_make\treply\n";
for my $f (sort @ARGV) {
    my $v = eval { Sisimai->make($f) } or next;
    (my $name = $f) =~ s{.*/(maildir/)}{$1};
    for my $e (@$v) {
        next if $e->reason eq 'feedback' || $e->reason eq 'delivered';
        my $d = $e->diagnosticcode // '';
        $d =~ s/[\t\r\n]+/ /g;
        $d =~ s/^\s+|\s+$//g;
        next if $d eq '';
        # Sisimai writes its own pseudo status codes (X.0.9NN) where a bounce had none: they
        # are not what the remote said, and Sisimai's oracle would read its own answer in them.
        $d =~ s/\s*\b[245]\.0\.9\d\d\b\s*/ /g;
        $d =~ s/^\s+|\s+$//g;
        my $status = $e->deliverystatus // '';
        $status = '' if $status =~ /^\d\.0\.9\d\d$/;
        my $line = $d;
        if ($d !~ /^[245]\d\d[ -]/) {
            my $pre = join ' ', grep { length } ($e->replycode // ''), $status;
            $line = "$pre $d" if length $pre;
        }
        next if $seen{lc $line}++;
        printf "github.com/sisimai/set-of-emails/blob/%s/%s\t%s\t%s\t%s\n",
            substr($commit, 0, 12), $name, lc($e->recipient->host), $e->reason, $line;
    }
}
