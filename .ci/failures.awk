# Restates each failed test with its error after bun's summary: CI shows only the tail of the output.
# bun prints a failure's source excerpt (ending in a caret line), its error, then "(fail) name".
# bun's closing list of the failures repeats them without their errors.
/^[0-9]+ tests? failed:$/ { exit }
/^[^ ].*\.test\.[jt]s:$/ { file = $0; n = 0; next }
/^\(pass\)/ { n = 0; next }
/^ *\^ *$/ { n = 0; next }
/^\(fail\)/ {
  if (++shown <= 5) {
    print "FAIL " file " " substr($0, 8)
    kept = 0
    for (i = 0; i < n && kept < 8; i++) {
      if (buf[i] ~ /^ *$/) continue
      print "    " buf[i]; kept++
      if (buf[i] ~ /^ +at /) break
    }
  }
  n = 0; next
}
{ if (n < 400) buf[n++] = $0 }
END { if (shown > 5) print "… and " shown - 5 " more failed" }
