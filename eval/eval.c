// eval/ — benchmark readers, metrics (VQA accuracy, ANLS, exact match), reports and charts.
// Empty until the evaluation issue lands; the library target exists so the layering is fixed now.
